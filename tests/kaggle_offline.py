"""The real `kaggle` 2.2.5 package, run offline: a stand-in `kaggle` command for tests/test_kaggle_real.py.

Every API call of kaggle/kagglesdk ends in one method, `kagglesdk.kaggle_http_client.KaggleHttpClient.call`; this
replaces it (and `_init_session`, which would read credential files) with canned replies, and `kernels output`'s
plain `requests.get` downloads with reads of local files. Sockets are blocked besides. Importing `kaggle`
authenticates as a side effect, so the environment is sandboxed first: every KAGGLE_* variable dropped, HOME, XDG and
KAGGLE_CONFIG_DIR pointed at an empty folder, dummy legacy credentials set (authentication then succeeds offline).

    python kaggle_offline.py ARGS...   # `kaggle ARGS...`, offline; requests are appended to $FAKE_KAGGLE_LOG as JSON
    python kaggle_offline.py --auth    # print {"auth": bool, "method": …}: how `import kaggle` authenticated here

Replies: $FAKE_STATUS (a KernelWorkerStatus name) and $FAKE_FAILURE for `kernels status`; $FAKE_OUTPUT_DIR (its files)
for `kernels output`; for `datasets status` the next of $FAKE_DATASET_STATUSES (comma-separated DatabundleVersionStatus
names, MISSING for a 404; the last one repeats; the position is kept in the file $FAKE_DATASET_COUNTER) with the
current version the same way from $FAKE_DATASET_VERSIONS. Dataset uploads (`datasets create/version`) are received
into $FAKE_UPLOADS, a folder.
"""
import io
import json
import os
import socket
import sys
import tempfile


def block_network():
    def blocked(*a, **k): raise OSError('network blocked by tests/kaggle_offline.py')
    socket.getaddrinfo = socket.create_connection = socket.socket.connect = socket.socket.connect_ex = blocked


def sandbox_env(root):
    "Before the first `import kaggle`: nothing of the machine's Kaggle configuration is visible."
    for k in [k for k in os.environ if k.startswith('KAGGLE_')]: del os.environ[k]
    home = os.path.join(root, 'home')
    os.makedirs(home, exist_ok=True)
    os.environ.update(HOME=home, XDG_CONFIG_HOME=os.path.join(root, 'xdg'), KAGGLE_CONFIG_DIR=os.path.join(root, 'kcfg'),
                      KAGGLE_USERNAME='offline-user', KAGGLE_KEY='offline-dummy-key', TMPDIR=os.path.join(root, 'tmp'))
    os.makedirs(os.environ['TMPDIR'], exist_ok=True)


def install_stub(replies, log=None):
    "Replace the HTTP choke point: record each request (to `log`, a JSON line each) and answer from `replies`."
    from kagglesdk.kaggle_http_client import KaggleHttpClient

    def call(self, service, method, request, response_type):
        if log:
            with open(log, 'a') as f: f.write(json.dumps({'method': method, 'request': request.__class__.to_dict(request)}) + '\n')
        return replies[method](request) if method in replies else response_type()
    KaggleHttpClient.call = call
    KaggleHttpClient._init_session = lambda self: None


def replies_from_env():
    from kagglesdk.kernels.types.kernels_api_service import (ApiGetKernelSessionStatusResponse, ApiListKernelSessionOutputResponse,
                                                             ApiSaveKernelResponse)
    from kagglesdk.kernels.types.kernels_enums import KernelWorkerStatus

    def status(req):
        r = ApiGetKernelSessionStatusResponse()
        r.status = KernelWorkerStatus[os.environ.get('FAKE_STATUS', 'COMPLETE')]
        if os.environ.get('FAKE_FAILURE'): r.failure_message = os.environ['FAKE_FAILURE']
        return r

    def output(req):
        d = os.environ.get('FAKE_OUTPUT_DIR', '')
        names = sorted(os.listdir(d)) if d else []
        return ApiListKernelSessionOutputResponse.from_dict(
            {'files': [{'fileName': n, 'url': 'file://' + os.path.join(d, n)} for n in names], 'log': '[]'})

    def save(req):
        return ApiSaveKernelResponse.from_dict({'ref': '/code/' + req.slug, 'url': 'https://www.kaggle.com/code/' + req.slug,
                                                'versionNumber': 3})
    from kagglesdk.blobs.types.blob_api_service import ApiStartBlobUploadResponse
    from kagglesdk.datasets.types.dataset_api_service import ApiCreateDatasetResponse, ApiGetDatasetStatusResponse
    from kagglesdk.datasets.types.dataset_enums import DatabundleVersionStatus
    import requests

    def position(advance):
        counter = os.environ.get('FAKE_DATASET_COUNTER')
        i = int(open(counter).read() or 0) if counter and os.path.exists(counter) else 0
        if counter and advance:
            with open(counter, 'w') as f: f.write(str(i + 1))
        return i if advance else max(0, i - 1)

    def nth(var, default, i):
        names = os.environ.get(var, default).split(',')
        return names[min(i, len(names) - 1)]

    def dataset_status(req):
        name = nth('FAKE_DATASET_STATUSES', 'READY', position(True))
        if name == 'MISSING':
            resp = requests.Response(); resp.status_code = 404
            raise requests.HTTPError(f'404 Client Error: Not Found for url: https://api.kaggle.com/v1/datasets/{req.dataset_slug}', response=resp)
        r = ApiGetDatasetStatusResponse(); r.status = DatabundleVersionStatus[name]; return r

    def dataset(req):                                      # asked right after the status: the same position
        from kagglesdk.datasets.types.dataset_api_service import ApiDataset
        d = ApiDataset(); d.current_version_number = int(nth('FAKE_DATASET_VERSIONS', '1', position(False))); return d

    def start_upload(req):
        r = ApiStartBlobUploadResponse(); r.token = f'token-{req.name}'; r.create_url = f'https://upload.invalid/{req.name}'; return r

    def created(req):
        return ApiCreateDatasetResponse.from_dict({'status': 'ok', 'url': 'https://www.kaggle.com/datasets/x', 'ref': 'x'})
    return {'GetKernelSessionStatus': status, 'ListKernelSessionOutput': output, 'SaveKernel': save,
            'GetDatasetStatus': dataset_status, 'GetDataset': dataset, 'StartBlobUpload': start_upload,
            'CreateDataset': created, 'CreateDatasetVersion': created}


def stub_uploads():
    "A dataset file goes up with a plain requests.Session.put of a signed URL: receive it into $FAKE_UPLOADS."
    import requests

    def put(self, url, data=None, **kw):
        body = data.read() if hasattr(data, 'read') else (data or b'')
        d = os.environ.get('FAKE_UPLOADS')
        if d and body:
            os.makedirs(d, exist_ok=True)
            with open(os.path.join(d, url.rsplit('/', 1)[1]), 'wb') as f: f.write(body)
        r = requests.Response(); r.status_code, r.url = 200, url; return r
    requests.Session.put = put


def stub_downloads():
    "kernels output fetches each file with a plain requests.get of its signed URL: serve file:// URLs from disk."
    import importlib
    import requests
    kae = importlib.import_module('kaggle.api.kaggle_api_extended')

    def get(url, stream=False, timeout=None, **kw):
        data = open(url[len('file://'):], 'rb').read()
        r = requests.Response()
        r.status_code, r.url, r.raw = 200, url, io.BytesIO(data)
        r.headers['Content-Length'] = str(len(data))
        r.request = requests.Request('GET', url).prepare()
        return r
    kae.requests.get = get


def auth_result():
    "How `import kaggle` authenticates in this environment (token introspection stubbed to 'active')."
    from kagglesdk.kaggle_http_client import KaggleHttpClient
    from kagglesdk.security.types.oauth_service import IntrospectTokenResponse

    def call(self, service, method, request, response_type):
        r = IntrospectTokenResponse(); r.active = True; r.username = 'token-user'; return r
    KaggleHttpClient.call = call
    KaggleHttpClient._init_session = lambda self: None
    import contextlib
    with contextlib.redirect_stdout(io.StringIO()): import kaggle
    return {'auth': bool(kaggle.api._authenticated), 'method': kaggle.api.config_values.get('auth_method')}


if __name__ == '__main__':
    block_network()
    if sys.argv[1:] == ['--auth']:                       # the environment is the test's scenario: no sandbox
        print(json.dumps(auth_result())); sys.exit(0)
    sandbox_env(tempfile.mkdtemp(prefix='kaggle-offline-'))
    install_stub(replies_from_env(), os.environ.get('FAKE_KAGGLE_LOG'))
    stub_downloads()
    stub_uploads()
    from kaggle.cli import main
    sys.argv = ['kaggle', *sys.argv[1:]]
    main()
