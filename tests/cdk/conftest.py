"""Session fixtures for the CDK tests: each stage is synthesized once, in-process (the way `app.py` builds it)
and once through the real CDK CLI (`npx cdk synth`, as the Makefile runs it)."""

import time
from pathlib import Path

import pytest
from cdk_test_support import (
    EXPLICIT_ACCOUNT_STAGES,
    ONE_CHANNEL_STAGES,
    PROFILE_STAGES,
    SCALED_STAGES,
    STAGE_NAMES,
    SynthesizedStage,
    run_cdk,
    synthesize,
)


@pytest.fixture(scope="session")
def web_client_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("web_client_dist")
    (directory / "index.html").write_text(
        "<!doctype html><title>voice agent</title><script src=app.js></script>"
    )
    (directory / "app.js").write_text("console.log('voice agent');\n")
    return directory


@pytest.fixture(scope="session")
def synthesized(
    web_client_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, SynthesizedStage]:
    """Every stage of cdk.json, synthesized in-process once (cdk-nag runs and would raise on a finding)."""
    return {
        name: synthesize(name, web_client_dir, tmp_path_factory.mktemp(f"synth_{name}"))
        for name in STAGE_NAMES
    }


@pytest.fixture(scope="session")
def explicit_account(web_client_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> SynthesizedStage:
    return synthesize(
        "acct", web_client_dir, tmp_path_factory.mktemp("synth_acct"), stages=EXPLICIT_ACCOUNT_STAGES
    )


@pytest.fixture(scope="session")
def one_channel(web_client_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> SynthesizedStage:
    """A stage with `turnChannels: 1`, synthesized once (cdk-nag runs and would raise on a finding)."""
    return synthesize(
        "solo", web_client_dir, tmp_path_factory.mktemp("synth_solo"), stages=ONE_CHANNEL_STAGES
    )


@pytest.fixture(scope="session")
def scaled(web_client_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> SynthesizedStage:
    """A stage for 1,000 concurrent calls (224 channels), synthesized once (cdk-nag runs)."""
    return synthesize("scale", web_client_dir, tmp_path_factory.mktemp("synth_scale"), stages=SCALED_STAGES)


@pytest.fixture(scope="session")
def profile_stage(web_client_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> SynthesizedStage:
    """A us-east-2 stage on the US inference profile, synthesized once."""
    return synthesize("prof", web_client_dir, tmp_path_factory.mktemp("synth_prof"), stages=PROFILE_STAGES)


@pytest.fixture(scope="session")
def cli_synth(web_client_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """`npx cdk synth --quiet -c stage=S -o DIR` for every stage, exactly as `make synth` runs it."""
    outdirs: dict[str, Path] = {}
    for name in STAGE_NAMES:
        outdir = tmp_path_factory.mktemp(f"cli_{name}")
        result = run_cdk(
            "synth",
            "--quiet",
            "-c",
            f"stage={name}",
            "-c",
            f"webClientDir={web_client_dir}",
            "-o",
            str(outdir),
        )
        assert result.returncode == 0, f"cdk synth of {name} failed:\n{result.stdout}\n{result.stderr}"
        outdirs[name] = outdir
    return outdirs


@pytest.fixture(scope="session")
def cli_pipeline_synth(web_client_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`npx cdk synth --quiet -c pipeline=1 -o DIR`, exactly as `make synth PIPELINE=1` runs it."""
    outdir = tmp_path_factory.mktemp("cli_pipeline")
    started = time.perf_counter()
    result = run_cdk(
        "synth", "--quiet", "-c", "pipeline=1", "-c", f"webClientDir={web_client_dir}", "-o", str(outdir)
    )
    print(f"\npipeline app synth (npx cdk synth): {time.perf_counter() - started:.1f} s")
    assert result.returncode == 0, f"cdk synth -c pipeline=1 failed:\n{result.stdout}\n{result.stderr}"
    return outdir
