# %% [markdown]
# # The CUDA guard
# > Before anything imports torch: read the GPU's compute capability with nvidia-smi, ask the installed torch (in a subprocess) which architectures it carries, and install the last build that runs the card when it does not.

# %%
#| default_exp cuda_guard

# %% [markdown]
# Use it as the first code cell of a notebook that may land on a GPU older than its torch — the Kaggle kernel and
# the Colab notebook do, before anything imports torch:
#
# ```python
# from blindsr.cuda_guard import ensure_torch, machine_description
# print(machine_description())     # e.g. '2 x Tesla T4 (sm_75)'
# ensure_torch()                   # 'cpu', 'ok', or swaps torch for the last build that runs the card
# ```
#
# Kaggle's "GPU P100" is a Pascal card, compute capability 6.0, and the torch in Kaggle's current image is a CUDA
# 12.8/13.0 build without `sm_60` kernels: `torch.cuda.is_available()` says True and the first kernel dies with "no
# kernel image is available for execution on the device". `blindsr.device.get_device` catches that and names the
# build to install, but by then torch is imported and a notebook process cannot swap it any more. So the Kaggle
# kernel runs this module first, *before anything imports torch*:
#
# 1. `nvidia-smi --query-gpu=compute_cap` gives every GPU's capability (no GPU: nothing to do);
# 2. a subprocess `python -c "import torch; ..."` reports the installed torch's `get_arch_list()`, so this
#    process never imports torch;
# 3. if that build cannot run every card, and the last build that still carries `sm_60`/`sm_70` (torch 2.14.1 for
#    CUDA 12.6, `LEGACY_TORCH`) can, torch and torchvision are swapped for it, the packages built against the old
#    torch (torchaudio, torchcodec) are removed, and a fresh interpreter runs one CUDA kernel to prove the swap —
#    then torch is imported later, once, at the right build.
#
# The module is pure standard library and Python 3.9 syntax, because `blindsr_kaggle build` pastes its source
# into the kernel, where it runs before blindsr is installed.

# %%
#| export
import json
import re
import shutil
import subprocess
import sys
from typing import Callable, Dict, List, Optional, Sequence, Tuple

# %%
#| hide
import os
import stat
import tempfile
from pathlib import Path

import torch                                   # the tests compare with the torch of this environment
from fastcore.test import test_eq, test_fail

import blindsr.cuda_guard
import blindsr.device

tmp = Path(tempfile.mkdtemp())

# %% [markdown]
# ## Which builds run which cards
#
# The rule is CUDA's, the same as `blindsr.device.cuda_arch_supported` (tested below to agree on a grid of cases):
# a cubin `sm_XY` runs on cards of the same major version with an equal or higher minor (`sm_80` runs on an A10,
# sm_86), and PTX `compute_XY` is compiled on the fly for any card at or above `XY`. `LEGACY_ARCHES` is the arch
# list of the CUDA 12.6 builds.
#
# The pins carry the local label `+cu126`. Under PEP 440 a pin without one, `torch==2.14.1`, is satisfied by the
# `2.14.1+cu130` that Kaggle or Colab may already have, so pip would keep it and change nothing; with the label pip
# must replace it (and a second run is a no-op). No `--force-reinstall` (it re-resolves every dependency from the
# torch index, upgrading numpy and others) and no `--no-deps` (it would skip the `nvidia-*-cu12` libraries the
# cu126 build loads).

# %%
#| export
LEGACY_TORCH = 'torch==2.14.1+cu126 torchvision==0.29.1+cu126'  # the last builds with sm_60/sm_70 kernels (blindsr.device uses these)
LEGACY_INDEX = 'https://download.pytorch.org/whl/cu126'  # their wheel index, which also serves their nvidia-*-cu12 libraries
LEGACY_ARCHES = ('sm_50', 'sm_60', 'sm_70', 'sm_75', 'sm_80', 'sm_86', 'sm_90')  # what those builds carry


def arch_supported(capability: Tuple[int, int],  # (major, minor), e.g. (6, 0) for a P100
                   arch_list: Sequence[str],  # a torch build's get_arch_list(), e.g. ['sm_75', 'compute_90']
                  ) -> bool:
    "Can a torch build with `arch_list` run kernels on a GPU of `capability`? (blindsr.device.cuda_arch_supported's rule)"
    major, minor = capability
    for arch in arch_list:
        kind, _, num = arch.partition('_')
        num = ''.join(ch for ch in num if ch.isdigit())   # 'sm_90a' -> '90'
        if not num: continue
        n = int(num)
        if kind == 'sm' and n // 10 == major and n % 10 <= minor: return True
        if kind == 'compute' and n <= 10 * major + minor: return True
    return False


# %% [markdown]
# Kaggle's current torch, a CUDA 12.8 build, runs every card from the T4 on, but not the P100:

# %%
#| exec_doc
CU128 = ['sm_75', 'sm_80', 'sm_86', 'sm_90', 'sm_100', 'sm_120']     # Kaggle's current torch
{card: arch_supported(cap, CU128) for card, cap in [('P100', (6, 0)), ('V100', (7, 0)), ('T4', (7, 5)), ('A100', (8, 0)), ('H100', (9, 0))]}

# %%
#| hide
test_eq([arch_supported(c, CU128) for c in [(6, 0), (7, 5), (8, 0), (8, 6), (9, 0)]], [False, True, True, True, True])
test_eq([arch_supported(c, LEGACY_ARCHES) for c in [(6, 0), (7, 0), (7, 5), (9, 0), (12, 0)]], [True, True, True, True, False])
test_eq(arch_supported((9, 0), ['sm_80', 'compute_80']), True)
test_eq(arch_supported((7, 0), []), False)

# %% [markdown]
# `blindsr.device` uses this very rule and these constants for `get_device`'s check and its error message (one
# definition, so the kernel's first cell and the library cannot disagree).

# %%
#| hide
test_eq(blindsr.device.cuda_arch_supported, blindsr.cuda_guard.arch_supported)
test_eq((blindsr.device.LEGACY_TORCH, blindsr.device.LEGACY_INDEX), (blindsr.cuda_guard.LEGACY_TORCH, blindsr.cuda_guard.LEGACY_INDEX))
test_eq([arch_supported(c, ['sm_61', 'compute_70']) for c in [(6, 0), (6, 1), (6, 2), (7, 0), (8, 6)]], [False, True, True, True, True])

# %% [markdown]
# ## Asking the machine
#
# nvidia-smi prints one line per GPU (`6.0`, or `7.5` twice on Kaggle's T4×2). Drivers older than 510 do not know
# the `compute_cap` field; then the card's name is looked up in a short table of the cards Kaggle and Colab lend.

# %%
#| export
KNOWN_GPUS = {'P100': (6, 0), 'V100': (7, 0), 'T4': (7, 5), 'A100': (8, 0), 'A10': (8, 6), 'L4': (8, 9), 'H100': (9, 0)}


def parse_compute_caps(text: str,  # nvidia-smi --query-gpu=compute_cap --format=csv,noheader output
                      ) -> List[Tuple[int, int]]:  # one (major, minor) per GPU
    "Capabilities from nvidia-smi's compute_cap lines ('6.0', '7.5', …); lines that are not X.Y are skipped."
    caps = []
    for line in text.splitlines():
        major, dot, minor = line.strip().partition('.')
        if dot and major.isdigit() and minor.isdigit(): caps.append((int(major), int(minor)))
    return caps


def caps_from_names(text: str) -> List[Tuple[int, int]]:
    "Capabilities from nvidia-smi's name lines ('Tesla P100-PCIE-16GB'), for the cards in KNOWN_GPUS."
    caps = []
    for line in text.splitlines():
        words = line.upper().replace('-', ' ').split()
        hit = [KNOWN_GPUS[w] for w in words if w in KNOWN_GPUS]
        if hit: caps.append(hit[0])
    return caps


def _smi_query(field: str, smi: str, timeout: float) -> Optional[str]:
    "nvidia-smi --query-gpu=FIELD output, or None (no nvidia-smi, or it failed)."
    exe = shutil.which(smi)
    if exe is None: return None
    try:
        r = subprocess.run([exe, f'--query-gpu={field}', '--format=csv,noheader'], capture_output=True, text=True,
                           timeout=timeout)
    except (OSError, subprocess.SubprocessError): return None
    return r.stdout if r.returncode == 0 else None


def gpu_capabilities(smi: str = 'nvidia-smi',  # the nvidia-smi executable (name on PATH, or a path)
                     timeout: float = 60,
                    ) -> List[Tuple[int, int]]:  # [] when there is no nvidia-smi or no GPU
    "The compute capability of every GPU, from nvidia-smi (no torch involved)."
    out = _smi_query('compute_cap', smi, timeout)
    if out is not None and parse_compute_caps(out): return parse_compute_caps(out)
    names = _smi_query('name', smi, timeout)
    return caps_from_names(names) if names else []


def machine_description(smi: str = 'nvidia-smi', timeout: float = 60) -> str:
    "What this machine runs on, from nvidia-smi: '2 x Tesla T4 (sm_75)', or 'no GPU (CPU only)'."
    caps = gpu_capabilities(smi, timeout)
    if not caps: return 'no GPU (CPU only)'
    names = [l.strip() for l in (_smi_query('name', smi, timeout) or '').splitlines() if l.strip()]
    names = names if len(names) == len(caps) else ['GPU'] * len(caps)
    groups = {}
    for name, (a, b) in zip(names, caps): groups[(name, f'sm_{a}{b}')] = groups.get((name, f'sm_{a}{b}'), 0) + 1
    return ' + '.join(f'{n} x {name} ({sm})' if n > 1 else f'{name} ({sm})' for (name, sm), n in groups.items())


# %% [markdown]
# On this machine:

# %%
#| exec_doc
gpu_capabilities(), machine_description()

# %%
#| hide
test_eq(parse_compute_caps('6.0\n'), [(6, 0)])
test_eq(parse_compute_caps('7.5\n7.5\n'), [(7, 5), (7, 5)])
test_eq(parse_compute_caps('[N/A]\n\n'), [])
test_eq(caps_from_names('Tesla P100-PCIE-16GB\nTesla T4\nNVIDIA A100-SXM4-40GB\nNVIDIA L4\nNVIDIA A10G\n'),
        [(6, 0), (7, 5), (8, 0), (8, 9)])            # an unknown card (A10G) is left out, not guessed


# %% [markdown]
# With a stand-in `nvidia-smi` (a shell script that prints what a P100 prints, and one from an old driver that
# only knows the name), and with none at all, every answer is read right.

# %%
#| hide
def fake_smi(path, caps_out, names_out='Tesla P100-PCIE-16GB', cap_rc=0):
    path.write_text('#!/bin/sh\ncase "$1" in\n'
                    f'  --query-gpu=compute_cap) printf "{caps_out}"; exit {cap_rc};;\n'
                    f'  --query-gpu=name) printf "{names_out}\\n";;\nesac\n')
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return str(path)

test_eq(gpu_capabilities(fake_smi(tmp/'smi_p100', '6.0\\n')), [(6, 0)])
test_eq(gpu_capabilities(fake_smi(tmp/'smi_t4x2', '7.5\\n7.5\\n')), [(7, 5), (7, 5)])
test_eq(gpu_capabilities(fake_smi(tmp/'smi_old', 'Field compute_cap is not a valid field', cap_rc=2)), [(6, 0)])
test_eq(gpu_capabilities(str(tmp/'no-such-nvidia-smi')), [])
test_eq(machine_description(fake_smi(tmp/'smi_t4x2n', '7.5\\n7.5\\n', 'Tesla T4\\nTesla T4')), '2 x Tesla T4 (sm_75)')
test_eq(machine_description(fake_smi(tmp/'smi_p100n', '6.0\\n')), 'Tesla P100-PCIE-16GB (sm_60)')
test_eq(machine_description(str(tmp/'no-such-nvidia-smi')), 'no GPU (CPU only)')

# %% [markdown]
# The installed torch is asked in a fresh interpreter; `None` means it could not be imported at all.

# %%
#| export
_TORCH_PROBE = 'import json, torch; print(json.dumps([torch.__version__, torch.cuda.get_arch_list()]))'


def installed_torch(python: str = sys.executable,  # the interpreter whose torch to ask
                    timeout: float = 300,
                   ) -> Optional[Tuple[str, List[str]]]:  # (torch.__version__, get_arch_list()), or None
    "The installed torch's version and arch list, read in a subprocess so that this process never imports torch."
    try:
        r = subprocess.run([python, '-c', _TORCH_PROBE], capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.SubprocessError): return None
    if r.returncode != 0 or not r.stdout.strip(): return None
    version, arch = json.loads(r.stdout.strip().splitlines()[-1])
    return version, list(arch)


# %%
#| hide
test_eq(installed_torch(), (torch.__version__, torch.cuda.get_arch_list()))
test_eq(installed_torch(str(tmp/'no-python')), None)


# %% [markdown]
# ## What to do
#
# Four outcomes: no GPU (`'cpu'`), the installed torch runs every card (`'ok'`), the legacy build would
# (`'install legacy'`), or neither does (`'unsupported'`: a card newer than the legacy build under an old torch,
# or one older than `sm_50`; nothing is installed and the kernel stops with what to do).

# %%
#| export
def decide(caps: Sequence[Tuple[int, int]],  # every GPU's capability; empty when there is no GPU
           arch_list: Optional[Sequence[str]],  # the installed torch's arch list; None when torch is not importable
          ) -> str:  # 'cpu', 'ok', 'install legacy' or 'unsupported'
    "The guard's action for these GPUs under this torch build."
    if not caps: return 'cpu'
    if arch_list is not None and all(arch_supported(c, arch_list) for c in caps): return 'ok'
    if all(arch_supported(c, LEGACY_ARCHES) for c in caps): return 'install legacy'
    return 'unsupported'


def legacy_install_command(python: str = sys.executable) -> List[str]:
    "pip install LEGACY_TORCH --index-url LEGACY_INDEX, for `python`: a forced swap, because the pins carry +cu126."
    return [python, '-m', 'pip', 'install', '-q', *LEGACY_TORCH.split(), '--index-url', LEGACY_INDEX]


# %% [markdown]
# Under Kaggle's current torch:

# %%
#| exec_doc
P100, T4, A100, H100 = [(6, 0)], [(7, 5), (7, 5)], [(8, 0)], [(9, 0)]
{name: decide(caps, CU128) for name, caps in {'no GPU': [], 'P100': P100, 'T4 x2': T4, 'H100': H100, 'K80': [(3, 7)]}.items()}

# %%
#| hide
test_eq([decide(c, CU128) for c in ([], P100, T4, A100, H100)], ['cpu', 'install legacy', 'ok', 'ok', 'ok'])
test_eq([decide(c, LEGACY_ARCHES) for c in (P100, T4, A100, H100)], ['ok'] * 4)
test_eq(decide(P100, None), 'install legacy')                                 # torch missing altogether
test_eq(decide(P100, []), 'install legacy')                                   # a CPU-only torch build
test_eq(decide([(12, 0)], ['sm_75', 'sm_80']), 'unsupported')                 # Blackwell under an old torch
test_eq(decide([(3, 7)], CU128), 'unsupported')                               # K80
cmd = legacy_install_command('py')
test_eq(cmd[-4:], ['torch==2.14.1+cu126', 'torchvision==0.29.1+cu126', '--index-url', 'https://download.pytorch.org/whl/cu126'])
assert '--force-reinstall' not in cmd and '--no-deps' not in cmd and '--extra-index-url' not in cmd

# %% [markdown]
# ## Nothing left half-swapped
#
# Kaggle's image also carries packages compiled against *its* torch: torchaudio and torchcodec, and on some images
# others whose version names a CUDA build (`+cu128`) or that pin one exact torch. Under the swapped torch they would
# fail when imported, or half work. blindsr uses none of them, so the guard removes them and says so, one line
# each. `torch_companions` finds them from the installed packages' metadata, importing nothing.

# %%
#| export
COMPANIONS = ('torchaudio', 'torchcodec', 'torchtext')   # torch's own packages whose native code is built against one torch
_BUILD_LABEL = re.compile(r'\+(pt\d+)?(cu|rocm)\d')       # 2.14.1+cu130, 2.1.2+pt25cu124: built for one CUDA torch
_TORCH_PIN = re.compile(r'torch\s*\(?\s*==\s*([0-9][0-9a-z.]*)')
_NEEDS_TORCH = re.compile(r'torch\s*(?:[<>=!~(\[;]|$)')


def installed_distributions() -> Dict[str, Tuple[str, List[str]]]:
    "{name: (version, requirements)} of the installed packages (importlib.metadata; nothing is imported)."
    from importlib import metadata
    out = {}
    for d in metadata.distributions():
        name = (d.metadata['Name'] or '').lower()
        if name and name not in out: out[name] = (d.version, list(d.requires or []))
    return out


def torch_companions(dists: Dict[str, Tuple[str, List[str]]],  # installed_distributions()
                    ) -> List[Tuple[str, str, str]]:  # [(name, version, why)]: what the swap would leave broken
    "Packages built against the installed torch or pinned to another one (torch and torchvision themselves excepted)."
    legacy = LEGACY_TORCH.split()[0].split('==')[1].split('+')[0]      # '2.14.1'
    out = []
    for name, (version, requires) in sorted(dists.items()):
        if name in ('torch', 'torchvision'): continue
        reqs = [r.strip() for r in requires if _NEEDS_TORCH.match(r.strip())]
        pins = [m.group(1) for m in map(_TORCH_PIN.match, reqs) if m]
        if name in COMPANIONS: out.append((name, version, 'built against the torch it came with'))
        elif reqs and _BUILD_LABEL.search(version): out.append((name, version, 'built for one CUDA torch build'))
        elif pins and pins[0] != legacy: out.append((name, version, f'pins torch=={pins[0]}'))
    return out


def uninstall_command(names: Sequence[str], python: str = sys.executable) -> List[str]:
    return [python, '-m', 'pip', 'uninstall', '-y', *names]


# %% [markdown]
# What an image like Kaggle's would lose to the swap:

# %%
#| exec_doc
image = {'torch': ('2.14.1+cu130', []), 'torchvision': ('0.29.1+cu130', ['torch==2.14.1']),
         'torchaudio': ('2.14.1+cu130', ['torch==2.14.1']), 'torchcodec': ('0.10.0', []),
         'torch-scatter': ('2.1.2+pt25cu124', ['torch']), 'xformers': ('0.0.29', ['torch==2.6.0', 'numpy']),
         'timm': ('1.0.9', ['torch', 'torchvision']), 'fastai': ('2.7.18', ['torch<2.7,>=1.10']), 'numpy': ('1.26.4', []),
         'torchmetrics': ('1.4.0', ['torch>=2.0.0; extra == "all"'])}
torch_companions(image)

# %%
#| hide
test_eq(torch_companions(image), [('torch-scatter', '2.1.2+pt25cu124', 'built for one CUDA torch build'),
                                  ('torchaudio', '2.14.1+cu130', 'built against the torch it came with'),
                                  ('torchcodec', '0.10.0', 'built against the torch it came with'),
                                  ('xformers', '0.0.29', 'pins torch==2.6.0')])
test_eq(torch_companions({'torch': ('2.14.1+cu126', []), 'timm': ('1.0.9', ['torch'])}), [])
assert isinstance(installed_distributions()['torch'][0], str)

# %% [markdown]
# The swap is proved the only way that counts: a fresh interpreter imports the new torch and runs one CUDA kernel
# (`1 + 1` on two elements). Without a GPU it reports what failed (checked below).

# %%
#| export
_CUDA_PROBE = ('import json, torch; x = torch.ones(2, device="cuda"); '
               'print(json.dumps([torch.__version__, float((x + x).sum())]))')


def run_cuda_kernel(python: str = sys.executable, timeout: float = 600) -> Tuple[bool, str]:
    "Run one CUDA kernel in a fresh interpreter: (True, what ran) or (False, what failed)."
    try: r = subprocess.run([python, '-c', _CUDA_PROBE], capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.SubprocessError) as e: return False, f'{type(e).__name__}: {e}'
    if r.returncode != 0: return False, (r.stderr.strip().splitlines() or [f'exit {r.returncode}'])[-1]
    version, total = json.loads(r.stdout.strip().splitlines()[-1])
    if total != 4.0: return False, f'torch {version} computed {total} for 1+1 on two elements'
    return True, f'torch {version} ran a CUDA kernel in a fresh interpreter'


# %%
#| hide
ok, msg = run_cuda_kernel()
print(ok, msg)
if not torch.cuda.is_available(): test_eq(ok, False)


# %% [markdown]
# ## Acting on it
#
# `ensure_torch` does the whole job and prints one line per step, so the Kaggle log says what happened. The ways it
# touches the machine — nvidia-smi, the torch probe, pip, the CUDA kernel and the package list — are arguments, so
# every branch is tested here without a GPU. After the swap it removes the companions, asks torch again and runs
# a kernel, and stops the notebook if any of that fails.

# %%
#| export
def _sm(caps): return ', '.join(f'sm_{a}{b}' for a, b in caps)


def ensure_torch(dry_run: bool = False,  # print what would be done, change nothing
                 caps: Optional[Sequence[Tuple[int, int]]] = None,  # GPU capabilities (default: from nvidia-smi)
                 probe: Optional[Callable[[], Optional[Tuple[str, List[str]]]]] = None,  # default: installed_torch
                 install: Optional[Callable[[List[str]], int]] = None,  # runs a pip command, returns its exit code
                 kernel_check: Optional[Callable[[], Tuple[bool, str]]] = None,  # default: run_cuda_kernel
                 dists: Optional[Dict[str, Tuple[str, List[str]]]] = None,  # default: installed_distributions()
                ) -> str:  # the action: 'cpu', 'ok', 'install legacy' (done) or 'would install legacy' (dry run)
    "Make sure the torch that will be imported can run this machine's GPUs; print what was found and done."
    caps = gpu_capabilities() if caps is None else list(caps)
    probe, kernel_check = probe or installed_torch, kernel_check or run_cuda_kernel
    install = install or (lambda cmd: subprocess.call(cmd))
    if not caps:
        print('cuda_guard: no GPU, nothing to install')
        return 'cpu'
    info = probe()
    version, arch = info if info is not None else ('(not importable)', None)
    action = decide(caps, arch)
    have = ', '.join(arch) if arch else 'no CUDA architectures'
    print(f'cuda_guard: {len(caps)} GPU(s), {_sm(caps)}; torch {version} carries {have}')
    if action == 'ok':
        print('cuda_guard: torch can run these GPUs, nothing to install')
        return action
    if action == 'unsupported':
        raise RuntimeError(f'cuda_guard: neither torch {version} ({have}) nor {LEGACY_TORCH} ({", ".join(LEGACY_ARCHES)}) '
                           f'has kernels for {_sm(caps)}; install a torch build for this GPU, or choose another '
                           'accelerator (blindsr_kaggle build --machine T4)')
    cmd, target = legacy_install_command(), LEGACY_TORCH.split()[0].split('==')[1]
    companions = torch_companions(installed_distributions() if dists is None else dists)
    shown = ' '.join(['pip'] + cmd[3:])
    removal = ' '.join(['pip'] + uninstall_command([n for n, _, _ in companions])[3:])
    if dry_run:
        print(f'cuda_guard: would swap torch {version} for {target}: {shown}')
        if companions: print(f'cuda_guard: then would run: {removal}')
        return 'would install legacy'
    print(f'cuda_guard: swapping torch {version} for {target}, the last build with {_sm(caps)} kernels: {shown}', flush=True)
    rc = install(cmd)
    if rc != 0: raise RuntimeError(f'cuda_guard: `{shown}` failed (exit {rc}); see the pip output above. The kernel needs '
                                   'internet for it (enable_internet: true, a phone-verified Kaggle account)')
    for name, ver, why in companions:
        print(f'cuda_guard: removing {name} {ver} ({why}; blindsr does not use it, and under torch {target} it would break)')
    if companions and install(uninstall_command([n for n, _, _ in companions])) != 0:
        raise RuntimeError(f'cuda_guard: `{removal}` failed; see the pip output above')
    info = probe()
    if info is None or not all(arch_supported(c, info[1]) for c in caps):
        raise RuntimeError(f'cuda_guard: after `{shown}` torch still has no kernels for {_sm(caps)} '
                           f'(it reports {info}); restart the session and run the notebook from the top')
    ok, msg = kernel_check()
    if not ok: raise RuntimeError(f'cuda_guard: torch {info[0]} is installed, but a CUDA kernel failed: {msg}')
    print(f'cuda_guard: torch {info[0]} installed, carrying {", ".join(info[1])}; {msg}. Import torch only now')
    return action


# %% [markdown]
# A P100 under a cu130 torch that already claims version 2.14.1: the pinned `+cu126` build replaces it, torchaudio
# and torchcodec go, and the kernel check runs. A recorder stands in for pip, and the probe answers with the new
# build once "pip" has run:

# %%
#| exec_doc
calls, builds = [], [('2.14.1+cu130', CU128)]
def fake_pip(cmd):
    calls.append(cmd[3:])
    if cmd[3] == 'install': builds.append(('2.14.1+cu126', list(LEGACY_ARCHES)))
    return 0
action = ensure_torch(caps=P100, probe=lambda: builds[-1], install=fake_pip, kernel_check=lambda: (True, 'ran'), dists=image)

# %%
#| hide
test_eq(action, 'install legacy')
test_eq(calls, [['install', '-q', 'torch==2.14.1+cu126', 'torchvision==0.29.1+cu126', '--index-url', LEGACY_INDEX],
                ['uninstall', '-y', 'torch-scatter', 'torchaudio', 'torchcodec', 'xformers']])

# %% [markdown]
# A T4×2 (Kaggle's other GPU), an A100 and an H100 need nothing; no GPU prints so and asks nothing; a dry run only
# says what it would do; a card nothing covers, or a pip that fails, installs the wrong thing or leaves a torch that
# cannot run a kernel, stops with a message.

# %%
#| hide
no_pip = lambda cmd: 1 / 0
for caps in (T4, A100, H100): test_eq(ensure_torch(caps=caps, probe=lambda: ('2.14.1+cu128', CU128), install=no_pip), 'ok')
test_eq(ensure_torch(caps=[], probe=lambda: 1 / 0, install=no_pip), 'cpu')
test_eq(ensure_torch(dry_run=True, caps=P100, probe=lambda: ('2.14.1+cu128', CU128), install=no_pip, dists=image),
        'would install legacy')
test_fail(lambda: ensure_torch(caps=[(12, 0)], probe=lambda: ('2.1.0', ['sm_80']), install=no_pip), contains='--machine T4')
test_fail(lambda: ensure_torch(caps=P100, probe=lambda: ('2.14.1+cu128', CU128), install=lambda c: 1, dists={}),
          contains='failed (exit 1)')
test_fail(lambda: ensure_torch(caps=P100, probe=lambda: ('2.14.1+cu128', CU128), install=lambda c: 0, dists={}),
          contains='still has no kernels')
swapped = []
test_fail(lambda: ensure_torch(caps=P100, probe=lambda: ('2.14.1+cu126', list(LEGACY_ARCHES)) if swapped else ('x', CU128),
                               install=lambda c: swapped.append(c) or 0, kernel_check=lambda: (False, 'no kernel image'), dists={}),
          contains='a CUDA kernel failed: no kernel image')

# %% [markdown]
# On this machine, for real (without a GPU it says so and touches nothing):

# %%
#| exec_doc
ensure_torch(dry_run=True)
print(machine_description())
