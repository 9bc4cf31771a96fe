"""The Hydra configs live at the top of the checkout and must also travel inside the wheel."""

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pifexp
from pifexp.config_dir import config_dir

CHECKOUT = Path(__file__).resolve().parents[1]


def test_checkout_install_finds_the_top_level_configs():
    if Path(pifexp.__file__).resolve().parents[1] != CHECKOUT:
        # running against an installed wheel: the configs come from inside the package
        assert config_dir() == Path(pifexp.__file__).resolve().parent / "configs"
    else:
        assert config_dir() == CHECKOUT / "configs"
    assert (config_dir() / "model_summary.yaml").is_file()


def test_wheel_carries_the_configs_and_runs_from_them(tmp_path):
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    dist, site = tmp_path / "dist", tmp_path / "site"
    subprocess.run(
        [*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", dist, CHECKOUT], check=True
    )
    (wheel,) = dist.glob("pifexp-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    configs = {p.relative_to(CHECKOUT).as_posix() for p in (CHECKOUT / "configs").rglob("*.yaml")}
    assert {f"pifexp/{name}" for name in configs} <= names

    subprocess.run([*pip, "install", "--no-deps", "--target", site, wheel], check=True)
    env = {**os.environ, "PYTHONPATH": str(site)}
    probe = "import pifexp.config_dir as c; print(c.__file__); print(c.config_dir())"
    where = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    module_file, found = where.stdout.split()
    assert Path(module_file).is_relative_to(site)
    assert Path(found) == site / "pifexp" / "configs"

    summary = subprocess.run(
        [sys.executable, "-m", "pifexp.cli", "model", "summary", "task=ms", "model=pif"],
        cwd=tmp_path, env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert summary.returncode == 0, summary.stderr
    assert "PIF-C (pif) for task ms" in summary.stdout
