"""Cases through Match's real banks: banking blocks re-uploads, withdrawal removes every hash of the case, a
reversed appeal un-banks."""

from __future__ import annotations

import shutil

from deepshield.cases import flows, screening
from deepshield.cases.adapters import MatchingHashBank
from deepshield.cases.context import CasesContext

from .conftest import file_notice, make_image


def test_bank_block_withdraw_through_match(settings, make_fields, tmp_path):
    ctx = CasesContext.build(settings, start_worker=False, detector=False)
    assert isinstance(ctx.bank, MatchingHashBank)
    try:
        case_id, _ = file_notice(ctx, make_fields())
        img = make_image(tmp_path / "m.png", seed=11)
        keep = tmp_path / "copy.png"
        shutil.copy(img, keep)
        m = screening.attach_media(ctx, case_id, img, "m.png", "image", "p", "automated")
        assert "pdq" in m.hashes  # Match's perceptual hash is recorded with the case media
        flows.decide(ctx, case_id, ["remove", "bank"], actor="rev", actor_kind="human", reason="ncii")
        r = screening.screen_upload(ctx, keep, "copy.png", "platform", keep_media=False)
        assert r.decision == "block" and case_id in r.reasons[0]["reason"]
        flows.add_victim_hashes(ctx, case_id, [("md5", "c" * 32)], actor="victim")
        assert ctx.bank.lookup("c" * 32, "md5")
        removed = flows.withdraw(ctx, case_id, actor="victim")
        assert removed >= 2
        assert ctx.bank.lookup("c" * 32, "md5") == []
        assert screening.screen_upload(ctx, keep, "copy.png", "platform", keep_media=False).decision == "allow"
    finally:
        ctx.close()
