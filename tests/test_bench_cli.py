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
    lines = [l for l in r.stdout.splitlines() if l.startswith(('basicsr_handout', 'blindsr_default'))]   # the table,
    assert lines[0].startswith('basicsr_handout') and lines[1].startswith('blindsr_default'), r.stdout  # after the runs' notes
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


def test_report_smoke_writes_every_field(tmp_path):
    """`blindsr_bench report --smoke --device cpu`: every phase runs in seconds and writes every field the GPU run
    writes, null only where a GPU is needed; the pictures, the summary and the GAN weights exist; a rerun keeps the
    finished phases; other settings in the same folder are refused (issue 25)."""
    out = tmp_path / 'report'
    r = bench('report', '--smoke', '--device', 'cpu', '--out', out)
    assert r.returncode == 0, r.stderr
    rep = json.loads((out / 'report.json').read_text())
    for name in ('report.json', 'summary.md', 'time_to_quality.png', 'gan.png', 'blindsr_gan.pt', 'blindsr_gan.json'):
        assert (out / name).stat().st_size > 0, name
    num, opt = (int, float), (int, float, type(None))

    def has(d, spec, where):
        missing = set(spec) - set(d)
        assert not missing, f'{where} lacks {missing}'
        for k, t in spec.items():
            assert isinstance(d[k], t), f'{where}.{k} = {d[k]!r} is not {t}'

    assert set(rep) == {'settings', 'machine', 'phases', 'files', 'throughput', 'precision', 'time_to_quality', 'gan'}
    has(rep['machine'], {'device': str, 'cuda_capability': type(None), 'torch': str, 'date': str}, 'machine')
    assert [p['status'] for p in rep['phases'].values()] == ['done'] * 4 and list(rep['phases']) == [
        'throughput', 'precision', 'time_to_quality', 'gan']
    t = rep['throughput']
    has(t, {'speedup': num, 'minutes_each': num}, 'throughput')
    for name in ('blindsr_default', 'basicsr_handout'):
        has(t[name], {'images_per_s': num, 'steps': int, 'batch': int, 'amp': str, 'degrade_on': str, 'peak_mem_gb': type(None)}, name)
    assert t['basicsr_handout']['degrade_on'] == 'cpu' and t['basicsr_handout']['amp'] == 'fp32'
    p = rep['precision']
    row = {'amp': str, 'precision': str, 'grad_scaler': bool, 'compiled': (bool, type(None)), 'steps': (int, type(None)),
           'images_per_s': opt, 'skipped_steps': (int, type(None)), 'loss_scale': opt, 'final_loss': opt, 'note': (str, type(None))}
    for k in ('fp32', 'fp16', 'bf16'): has(p[k], row, f'precision.{k}')
    assert set(p['fp16']) == set(p['fp32']) and p['fp32']['images_per_s'] > 0 and p['fp32']['skipped_steps'] == 0
    assert p['fp16']['images_per_s'] is None and 'GPU' in p['fp16']['note'] and p['cuda_graph'] is None
    q = rep['time_to_quality']
    has(q, {'minutes_each': num, 'bicubic_val_psnr': num, 'val_faces': int, 'target_psnr': num, 'handout_minutes': num,
            'blindsr_minutes_to_target': opt, 'times_sooner': opt, 'picture': str}, 'time_to_quality')
    for name in ('blindsr_default', 'basicsr_handout'):
        has(q[name], {'steps': int, 'final_val_psnr': num, 'val_curve': list}, name)
        assert q[name]['val_curve'] and all(len(pt) == 2 for pt in q[name]['val_curve'])
    g = rep['gan']
    has(g, {'steps': int, 'minutes': num, 'psnr_before': num, 'psnr_after': num, 'sharpness': str, 'sharpness_before': num,
            'sharpness_after': num, 'sharpness_gt': num, 'picture': str, 'weights': str, 'start': str}, 'gan')
    from blindsr.checkpoint import weights_info
    info = weights_info(out / 'blindsr_gan.pt')
    assert info['arch'] == 'msrresnet' and info['meta']['smoke'] is True and info['dtype'] == 'float16'
    md = (out / 'summary.md').read_text()
    assert '## Time to quality' in md and '## GAN fine-tune' in md and 'needs a CUDA GPU' in md

    again = bench('report', '--smoke', '--device', 'cpu', '--out', out)       # resumes: nothing left to run
    assert again.returncode == 0 and again.stdout.count('kept from the earlier run') == 4, again.stdout
    other = bench('report', '--smoke', '--device', 'cpu', '--out', out, '--minutes', '0.3')
    assert other.returncode == 2 and 'other settings (minutes)' in other.stderr
