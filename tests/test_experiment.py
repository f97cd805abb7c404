"""The experiment seam: one conf read into typed sections with derived defaults, read by the
shell without torch, and the run.sh bookkeeping that notices changed data."""
from __future__ import annotations

import subprocess
import sys

import yaml

from voxanon import stages
from voxanon.experiment import load_experiment, write_resolved

BLOCK_HEAVY = ("import sys\n"
               "for name in ('torch', 'soundfile', 'numpy', 'scipy', 'kaldiio'):\n"
               "    sys.modules[name] = None  # importing it now raises ImportError\n"
               "from voxanon.bin.conf import main\n"
               "sys.exit(main(sys.argv[1:]))\n")


def conf_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", BLOCK_HEAVY, *args], capture_output=True, text=True)


def test_conf_show_check_schema_need_no_torch_nor_audio_libraries(root):
    for name in ("knnvc", "admixture_p0.4", "wavlm_conv_adv_discrete", "mini"):
        shown = conf_cli("show", str(root / "conf" / f"{name}.yaml"))
        assert shown.returncode == 0, shown.stderr
        assert yaml.safe_load(shown.stdout)["exp"] == name
        assert conf_cli("check", str(root / "conf" / f"{name}.yaml")).returncode == 0
    schema = conf_cli("schema")
    assert schema.returncode == 0 and "## anonymizer" in schema.stdout
    assert "| suffix | str | `\"\"` | output dirs are data/<set><suffix>; default \"_<exp>\"" in schema.stdout


def test_derived_defaults_and_the_resolved_file_reads_back_the_same(root, tmp_path):
    exp = load_experiment(root / "conf" / "wavlm_conv.yaml", "_mine")
    assert exp.exp == "wavlm_conv_mine" and exp.anonymizer.suffix == "_wavlm_conv"
    params = exp.params
    assert params.checkpoint == "exp/wavlm_conv_mine/converter/final.pt"
    assert (params.wavlm, params.layer) == (exp.features.checkpoint, exp.features.layer)
    write_resolved(exp, tmp_path / "config.yaml")
    again = load_experiment(tmp_path / "config.yaml")
    assert again.exp == exp.exp and again.to_dict() == exp.to_dict()


def test_a_seedless_conf_stays_seedless_once_resolved(tmp_path):
    (tmp_path / "c.yaml").write_text("exp: s\nanonymizer: {system: mcadams}\n")
    exp = load_experiment(tmp_path / "c.yaml")
    write_resolved(exp, tmp_path / "config.yaml")
    assert not exp.seed_given and not load_experiment(tmp_path / "config.yaml").seed_given


def test_data_contents_change_the_stage_keys_and_the_data_key(tmp_path, tiny_data_dir):
    (tmp_path / "c.yaml").write_text("exp: d\nanonymizer: {system: mcadams, seed: 3}\n")
    exp = load_experiment(tmp_path / "c.yaml")
    before = stages.stage_keys(exp, str(tiny_data_dir))
    data_key = stages.data_key(exp, str(tiny_data_dir), "data/mini_train")
    (tmp_path / "other.yaml").write_text("exp: other\nanonymizer: {system: mcadams, seed: 4}\n")
    assert stages.data_key(load_experiment(tmp_path / "other.yaml"), str(tiny_data_dir), "data/mini_train") == data_key  # shared
    assert stages.stage_keys(exp, str(tiny_data_dir)) == before 
    utt2spk = tiny_data_dir / "utt2spk"
    lines = utt2spk.read_text().splitlines(keepends=True)
    utt2spk.write_text("".join(lines[1:]))  # one utterance less
    after = stages.stage_keys(exp, str(tiny_data_dir))
    assert stages.data_key(exp, str(tiny_data_dir), "data/mini_train") != data_key
    assert before[0] == after[0] and all(a != b for a, b in zip(before[1:], after[1:]))  # stage 0 reads no data


def test_the_conf_reference_in_docs_is_current(root):
    from voxanon.conf_reference import reference as schema

    page = (root / "docs" / "conf_reference.md").read_text()
    assert page == schema() + "\n", "docs/conf_reference.md is stale: python -m voxanon.bin.conf schema > docs/conf_reference.md"
    assert "| matching_sets | str |" in page and "## anonymizer.params (mcadams)" in page


def test_sets_outside_the_target_pool_do_not_depend_on_the_pool_settings(root):
    knnvc, mcadams = load_experiment(root / "conf" / "knnvc.yaml"), load_experiment(root / "conf" / "mcadams.yaml")
    assert knnvc.data.options != mcadams.data.options  # the kNN-VC conf names its VoxCeleb pool
    assert stages.data_key(knnvc, "", "data/libri_dev_enrolls") == stages.data_key(mcadams, "", "data/libri_dev_enrolls")
    libri100 = load_experiment(root / "conf" / "knnvc_libri100.yaml")
    assert stages.data_key(libri100, "", "data/libri100") != stages.data_key(knnvc, "", "data/libri100")
