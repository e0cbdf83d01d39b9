"""`blindsr_bench` as a user runs it: a fresh process, smoke mode on the CPU, the tables, the JSON, bad --set values, and
the generator benchmark (`blindsr_bench generators`, once `python -m blindsr.models`)."""
import json
import subprocess
import sys


def bench(*args):
    return subprocess.run([sys.executable, '-m', 'blindsr.bench', *map(str, args)], capture_output=True, text=True)


def test_speed_smoke_with_overrides(tmp_path):
    r = bench('speed', '--smoke', '--device', 'cpu', '--parts', 'degradation', 'training', '--set', 'degrade_mix=2',
              '--json', tmp_path / 's.json')
    assert r.returncode == 0, r.stderr
    assert '| degradation (ai6126_2024) |' in r.stdout and '| end-to-end training |' in r.stdout
    data = json.loads((tmp_path / 's.json').read_text())
    assert data['smoke'] and [t['recipe'] for t in data['training']] == ['blindsr_default', 'basicsr_handout']
    assert all(t['images_per_s'] and t['images_per_s'] > 0 for t in data['training'])


def test_bad_set_names_the_field():
    r = bench('speed', '--smoke', '--device', 'cpu', '--set', 'batchsize=8')
    assert r.returncode == 2
    assert 'batchsize: not a TrainConfig field' in r.stderr


def test_unknown_recipe_is_refused(tmp_path):
    r = bench('recipes', tmp_path, '--recipes', 'fastest')
    assert r.returncode == 2 and "invalid choice: 'fastest'" in r.stderr


def test_breakdown_on_cpu(tmp_path):
    from blindsr.samples import synthetic_faces
    synthetic_faces(tmp_path / 'faces', n=6, size=64)
    r = bench('breakdown', tmp_path / 'faces', '--device', 'cpu', '--steps', '2', '--set', 'batch_size=2',
              '--set', 'generator_kwargs={"num_feat": 8, "num_block": 1}', '--json', tmp_path / 'b.json')
    assert r.returncode == 0, r.stderr
    assert '| degradation |' in r.stdout and '**end to end** (wall)' in r.stdout
    data = json.loads((tmp_path / 'b.json').read_text())
    assert data['batch'] == 2 and data['e2e_ms_per_step'] > 0 and data['step_device_ms'] is None


def test_recipes_on_cpu(tmp_path):
    from blindsr.samples import synthetic_faces
    synthetic_faces(tmp_path / 'faces', n=8, size=64)
    r = bench('recipes', tmp_path / 'faces', '--minutes', '0.03', '--val-holdout', '3', '--val-every-min', '0.01',
              '--device', 'cpu', '--out-dir', tmp_path / 'cmp', '--set', 'batch_size=2', '--set', 'log_every=2',
              '--set', 'generator_kwargs={"num_feat": 8, "num_block": 1}')
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith('basicsr_handout') and lines[1].startswith('blindsr_default'), r.stdout
    assert "blindsr_default reaches basicsr_handout's final" in r.stdout
    assert (tmp_path / 'cmp' / 'recipes.png').stat().st_size > 0
    for name in ('basicsr_handout', 'blindsr_default'):      # --set reaches every run
        cfg = json.loads((tmp_path / 'cmp' / name / 'config.json').read_text())
        assert cfg['batch_size'] == 2 and cfg['generator_kwargs'] == {'num_feat': 8, 'num_block': 1}
    assert json.loads((tmp_path / 'cmp' / 'basicsr_handout' / 'config.json').read_text())['amp'] == 'off'


def test_generators_table_and_json(tmp_path):
    r = bench('generators', 'msrresnet', 'plksr', '--device', 'cpu', '--size', '8', '--iters', '1', '--warmup', '0',
              '--json', tmp_path / 'b.json')
    assert r.returncode == 0, r.stderr
    assert '| generator | params |' in r.stdout
    assert '| msrresnet | 1,517,571 |' in r.stdout
    data = json.loads((tmp_path / 'b.json').read_text())
    assert [x['name'] for x in data['rows']] == ['msrresnet', 'plksr']
    assert data['rows'][0]['precision'] == 'fp32' and data['rows'][0]['train_img_s'] is None
    assert data['torch']


def test_unknown_generator_lists_valid_names():
    r = bench('generators', 'swinir', '--device', 'cpu')
    assert r.returncode == 2
    assert 'valid names: msrresnet, msrresnet_deep, rcan_lite, plksr' in r.stderr


def test_generators_amp_on_cpu_is_refused():
    r = bench('generators', 'msrresnet', '--device', 'cpu', '--amp', 'on', '--size', '8')
    assert r.returncode == 2
    assert 'CUDA only' in r.stderr
