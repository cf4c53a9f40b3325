"""`deepshield label`, `deepshield verify` and `deepshield keys init`."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated

import typer

from deepshield.labels.errors import LabelError
from deepshield.terminal import plain_console, styled

console = plain_console()
keys_app = typer.Typer(help="Project signing keys (AIGC Ed25519 key, local C2PA CA and signer).", no_args_is_help=True)


@keys_app.command("init")
def keys_init(
    organisation: Annotated[str, typer.Option(help="organisation named in the certificates")] = "Deepshield",
    force: Annotated[bool, typer.Option(help="replace existing keys (earlier labels stop verifying)")] = False,
) -> None:
    """Create the AIGC signing key, a local CA and a C2PA signing certificate under $DEEPSHIELD_HOME/keys."""
    from deepshield.labels.keys import init_keys, keys_dir

    existed = (keys_dir() / "aigc_ed25519.pem").exists()
    d = init_keys(organisation=organisation, force=force)
    if existed and not force:
        console.print(f"keys already present in {d} (use --force to replace them)")
    else:
        console.print(f"created keys in {d}; trust anchor for verifiers: {d / 'c2pa_ca.pem'}")


def label(
    src: Annotated[Path, typer.Argument(help="image, video or audio file", exists=True, dir_okay=False)],
    output: Annotated[Path, typer.Option("--output", "-o", help="where to write the labelled file")],
    producer: Annotated[str, typer.Option(help="ContentProducer: the generating service")] = "deepshield",
    produce_id: Annotated[str | None, typer.Option(help="ProduceID (default: a new random id)")] = None,
    level: Annotated[str, typer.Option("--label", help='AIGC Label: "1" AI-generated, "2" possibly, "3" suspected')] = (
        "1"
    ),
    text: Annotated[str, typer.Option(help='visible text; must contain "AI"/"人工智能" and "生成"/"合成"')] = "AI生成",
    position: Annotated[
        str, typer.Option(help="top-left, top-right, bottom-left, bottom-right, top, bottom, center")
    ] = (  # noqa: E501
        "bottom-right"
    ),
    visible: Annotated[bool, typer.Option("--visible/--no-visible", help="explicit label (text or audio cue)")] = True,
    watermark: Annotated[bool, typer.Option("--watermark/--no-watermark", help="invisible watermark")] = True,
    c2pa: Annotated[bool, typer.Option("--c2pa/--no-c2pa", help="signed C2PA manifest")] = True,
    attribute_form: Annotated[bool, typer.Option(help="write TC260:AIGC as an XMP attribute, not an element")] = False,
    platform: Annotated[str | None, typer.Option(help="platform mode: ContentPropagator to add (pixels untouched)")] = (
        None
    ),
    propagate_id: Annotated[str | None, typer.Option(help="platform mode: PropagateID (default: a new id)")] = None,
    notice: Annotated[Path | None, typer.Option(help="audio: a spoken notice file instead of the rhythm cue")] = None,
    consent: Annotated[
        str | None, typer.Option(help="the depicted person's consent credential (dsc1... token, or @FILE holding it)")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the result as JSON")] = False,
) -> None:
    """Label AI-generated content: visible label, watermark, AIGC metadata and C2PA manifest (producer mode),
    or add a platform's ContentPropagator/PropagateID and re-sign (platform mode)."""
    from deepshield.labels.service import LabelOptions, label_file

    if output.resolve() == src.resolve():
        raise LabelError("write the labelled file to a new path (-o), not over the input")
    opts = LabelOptions(
        producer=producer,
        produce_id=produce_id,
        label=level,
        visible=visible,
        text=text,
        position=position,
        watermark=watermark,
        c2pa=c2pa,
        xmp_form="attribute" if attribute_form else "element",
        propagator=platform,
        propagate_id=propagate_id,
        audio_notice=notice,
        consent=_read_token(consent),
    )
    with console.status("labelling..."):
        res = label_file(src, output, opts)
    if as_json:
        print(json.dumps(res.to_dict(), ensure_ascii=False))
        return
    console.print(styled(("labelled", "green"), f" {output} ({res.mode} mode)"))
    for s in res.steps:
        console.print(f"  - {s}")
    if res.aigc:
        console.print(f"  ProduceID {res.aigc.get('ProduceID')}  PropagateID {res.aigc.get('PropagateID') or '-'}")


def verify(
    path: Annotated[Path, typer.Argument(help="file to check", exists=True, dir_okay=False)],
    no_watermark: Annotated[bool, typer.Option("--no-watermark", help="skip the watermark search")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print the report as JSON")] = False,
) -> None:
    """Report every label found (AIGC metadata, C2PA manifest, watermark), their agreement and what to display."""
    from deepshield.labels.service import verify_file

    with console.status("verifying..."):
        rep = verify_file(path, watermark=not no_watermark)
    if as_json:
        print(json.dumps(rep.to_dict(), ensure_ascii=False))
        return
    # Every value below but the path comes from the file itself, which may be hostile: the console has no markup,
    # so a crafted label prints as text and cannot restyle the report (a fake "agree" line, say).
    console.print(styled((str(path), "bold"), f" ({rep.kind}/{rep.format})"))
    console.print(styled("  display: ", (rep.decision or "no label", "bold")))
    m = rep.metadata
    if m is None:
        console.print("  AIGC metadata: absent")
    elif "error" in m:
        console.print(f"  AIGC metadata: malformed ({m['error']})")
    else:
        aigc = m["aigc"] if isinstance(m["aigc"], Mapping) else {}
        console.print(
            f"  AIGC metadata ({m['found_in']}): Label {aigc.get('Label')}, "
            f"producer {aigc.get('ContentProducer')!r}, "
            f"ReservedCode1 {m['ReservedCode1']}, ReservedCode2 {m['ReservedCode2']}"
        )
    console.print(f"  C2PA: {rep.c2pa['summary'] or rep.c2pa['state']}")
    w = rep.watermark
    if w is None:
        console.print("  watermark: not checked")
    elif w["detected"]:
        console.print(f"  watermark: found, payload {w['payload_hex']} (bit agreement {w['confidence']:.2f})")
    else:
        console.print("  watermark: none found")
    cs = rep.consent
    if cs.get("state") != "absent":
        colour = "green" if cs.get("state") == "valid" else "red"
        console.print(
            styled("  consent: ", (str(cs.get("state")), colour), f" {cs.get('credential_id')}: {cs.get('reason')}")
        )
    for a in rep.agreement:
        console.print(styled("  ", ("agree", "green"), f" {a}"))
    for c in rep.conflicts:
        console.print(styled("  ", ("conflict", "red"), f" {c}"))


def _read_token(value: str | None) -> str | None:
    """`--consent` takes the token itself or `@FILE` (tokens are long for a command line)."""
    if value is None or not value.startswith("@"):
        return value
    try:
        return Path(value[1:]).read_text(encoding="utf-8").strip()
    except OSError as e:
        raise LabelError(f"--consent: cannot read {value[1:]} ({e.strerror})") from None


def register(app: typer.Typer) -> None:
    app.add_typer(keys_app, name="keys")
    app.command("label")(label)
    app.command("verify")(verify)
