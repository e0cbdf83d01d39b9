"""`python -m blindsr.models` as a user runs it: a fresh process, the markdown table, the JSON, the exit codes."""
import json
import subprocess
import sys


def bench(*args):
    return subprocess.run([sys.executable, '-m', 'blindsr.models', *map(str, args)], capture_output=True, text=True)


def test_table_and_json(tmp_path):
    r = bench('--names', 'msrresnet,plksr', '--device', 'cpu', '--size', '8', '--iters', '1', '--warmup', '0',
              '--json', tmp_path / 'b.json')
    assert r.returncode == 0, r.stderr
    assert '| generator | params |' in r.stdout
    assert '| msrresnet | 1,517,571 |' in r.stdout
    data = json.loads((tmp_path / 'b.json').read_text())
    assert [x['name'] for x in data['rows']] == ['msrresnet', 'plksr']
    assert data['rows'][0]['precision'] == 'fp32' and data['rows'][0]['train_img_s'] is None
    assert data['torch']


def test_unknown_generator_lists_valid_names():
    r = bench('--names', 'swinir', '--device', 'cpu')
    assert r.returncode == 2
    assert 'valid names: msrresnet, msrresnet_deep, rcan_lite, plksr' in r.stderr


def test_amp_on_cpu_is_refused():
    r = bench('--names', 'msrresnet', '--device', 'cpu', '--amp', 'on', '--size', '8')
    assert r.returncode == 2
    assert 'CUDA only' in r.stderr
