"""Choosing llama.cpp's CPU code: advertised flags filter, a probe decides, the choice is
kept per machine and build, and a variant that crashes is left out."""

from __future__ import annotations

from pathlib import Path

import pytest

from aift.inference.engines.base import PromptTooLong
from aift.inference.engines.process import rebuild_error
from aift.native import llamacpp_backend as backend
from aift.native.cpu import CpuInfo, parse_cpuinfo

FLAGS = (
    "fpu sse4_2 avx f16c fma avx2 bmi2 avx512f avx512cd avx512vl avx512dq avx512bw "
    "avx512vbmi avx512_vnni avx512_bf16 amx_tile amx_int8 amx_bf16"
)
CPUINFO = (
    "processor\t: 0\nvendor_id\t: GenuineIntel\n"
    "model name\t: Intel(R) Xeon(R) Platinum 8480+\n"
    f"flags\t\t: {FLAGS}\n\nprocessor\t: 1\nvendor_id\t: GenuineIntel\n"
)
HASWELL_ONLY = frozenset({"sse4_2", "avx", "f16c", "fma", "avx2", "bmi2"})


def library(tmp_path: Path) -> dict[str, Path]:
    """A fake portable build: one file per variant (the probe is replaced in these tests)."""
    found = {}
    for name in backend.VARIANT_FLAGS:
        path = tmp_path / f"{backend.VARIANT_PREFIX}{name}.so"
        path.write_bytes(b"")
        found[name] = path
    return found


def test_cpuinfo_is_read_from_the_first_processor() -> None:
    cpu = parse_cpuinfo(CPUINFO, "x86_64")
    assert cpu.vendor == "GenuineIntel" and cpu.model.startswith("Intel(R) Xeon")
    assert cpu.has("amx_tile", "avx512f") and not cpu.has("avx_vnni")
    assert (
        cpu.fingerprint() != parse_cpuinfo(CPUINFO.replace(" amx_tile", ""), "x86_64").fingerprint()
    )


def test_variants_are_tried_best_first() -> None:
    order = backend.preference(["x64", "haswell", "sapphirerapids", "zen4", "alderlake", "new"])
    assert order == ["sapphirerapids", "zen4", "alderlake", "haswell", "x64", "new"]


def test_an_amx_variant_that_crashes_is_left_out(tmp_path: Path, monkeypatch) -> None:
    """The VM of issue 30: AMX advertised, SIGILL on the first decode."""
    tried = []

    def probe(variant: Path | None, model: Path) -> backend.VariantProbe:
        name = variant.name.removeprefix(backend.VARIANT_PREFIX).removesuffix(".so")
        tried.append(name)
        if name == "sapphirerapids":
            return backend.VariantProbe(variant=name, result="crashed", detail="SIGILL")
        return backend.VariantProbe(variant=name, result="runs")

    monkeypatch.setattr(backend, "run_probe", probe)
    cpu = parse_cpuinfo(CPUINFO, "x86_64")
    choice = backend.choose(tmp_path, library(tmp_path), cpu, tmp_path / "model.gguf")
    assert tried == ["sapphirerapids", "zen4"]
    assert choice.variant == "zen4" and choice.verified and choice.portable
    results = {p.variant: p.result for p in choice.probes}
    assert results["sapphirerapids"] == "crashed" and results["haswell"] == "not tried"
    assert results["alderlake"] == "not advertised"  # no avx_vnni on this CPU


def test_families_the_cpu_does_not_advertise_are_never_loaded(tmp_path: Path, monkeypatch) -> None:
    tried = []

    def probe(variant: Path | None, model: Path) -> backend.VariantProbe:
        tried.append(variant.name if variant else None)
        return backend.VariantProbe(variant="x", result="runs")

    monkeypatch.setattr(backend, "run_probe", probe)
    cpu = CpuInfo("AMD EPYC", "AuthenticAMD", HASWELL_ONLY, "x86_64")
    choice = backend.choose(tmp_path, library(tmp_path), cpu, tmp_path / "model.gguf")
    assert choice.variant == "haswell" and tried == ["libggml-cpu-haswell.so"]
    skipped = [p for p in choice.probes if p.result == "not advertised"]
    assert {p.variant for p in skipped} >= {"skylakex", "zen4", "sapphirerapids", "alderlake"}


def test_when_nothing_runs_the_error_names_every_variant(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(
        backend,
        "run_probe",
        lambda variant, model: backend.VariantProbe(variant="v", result="crashed", detail="SIGILL"),
    )
    cpu = CpuInfo("Odd", "Odd", frozenset({"sse4_2"}), "x86_64")
    choice = backend.choose(tmp_path, library(tmp_path), cpu, tmp_path / "model.gguf")
    assert choice.variant is None and "No llama.cpp CPU variant runs" in (choice.error or "")


def test_the_choice_is_kept_per_machine_and_build(tmp_path: Path, monkeypatch) -> None:
    lib = tmp_path / "site-packages" / "llama_cpp" / "lib"  # the wheel's layout
    lib.mkdir(parents=True)
    variants = tmp_path / "site-packages" / "bin"
    variants.mkdir()
    library(variants)
    assert set(backend.variants(lib)) == set(backend.VARIANT_FLAGS)
    calls = []

    def choose(lib_dir, found, cpu, model):  # noqa: ANN001, ANN202
        calls.append(cpu.fingerprint())
        return backend.BackendChoice(portable=True, variant="haswell", path="p", verified=True)

    monkeypatch.setattr(backend, "library_dir", lambda: lib)
    monkeypatch.setattr(backend, "choose", choose)
    cache = tmp_path / "cache"
    first = backend.select_backend(cache, tmp_path / "m.gguf")
    second = backend.select_backend(cache, tmp_path / "m.gguf")
    assert first.variant == second.variant == "haswell" and len(calls) == 1
    (variants / f"{backend.VARIANT_PREFIX}haswell.so").write_bytes(b"rebuilt")  # a new build
    backend.select_backend(cache, tmp_path / "m.gguf")
    assert len(calls) == 2


def test_signals_are_named_for_people() -> None:
    assert backend.signal_name(4) == "SIGILL (illegal instruction)"
    assert backend.signal_name(11).startswith("SIGSEGV")


@pytest.mark.parametrize(
    ("payload", "kind"),
    [
        (("PromptTooLong", "too long", {"prompt_tokens": 9}), PromptTooLong),
        (("", "RuntimeError: boom", None), None),
    ],
)
def test_errors_from_the_engine_process_keep_their_type(payload, kind) -> None:  # noqa: ANN001
    error = rebuild_error(payload)
    if kind is not None:
        assert type(error) is kind and error.details == {"prompt_tokens": 9}
    else:
        assert error.code == "engine_error" and "boom" in error.message


def test_a_machine_no_variant_runs_on_gets_a_clear_error(tmp_path: Path, monkeypatch) -> None:
    from aift.errors import CapabilityMissing

    failed = backend.BackendChoice(portable=True, error="No llama.cpp CPU variant runs")
    monkeypatch.setattr(backend, "_chosen", None)
    monkeypatch.setattr(backend, "select_backend", lambda cache, model: failed)
    with pytest.raises(CapabilityMissing, match="aift doctor"):
        backend.ensure_backend(tmp_path)
    assert backend._chosen is None, "nothing half-loaded is kept"
