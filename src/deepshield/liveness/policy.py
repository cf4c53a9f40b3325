"""Every threshold of the liveness decision in one place, stored with each decision."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from deepshield.jsontypes import JsonObject


@dataclass(frozen=True)
class LivenessPolicy:
    turn_deg: float = 30.0  # a turn step needs |yaw| past this, on the requested side
    profile_deg: float = 55.0  # a profile hold needs |yaw| past this (or the mesh lost right after passing the next)
    profile_hold_s: float = 0.4
    #: The mesh lost during a profile counts only right after a tracked yaw this deep on the asked side, still rising:
    #: a real head is tracked to about 60 degrees, a 2.5-D warp of a frontal face breaks down near 40 (issue 32).
    profile_lost_from_deg: float = 50.0
    front_deg: float = 15.0  # "back to the front": |yaw| and |pitch - baseline| under this
    front_hold_s: float = 0.3
    up_deg: float = 12.0  # look up: pitch above the frontal baseline by this much
    reaction_s: float = 0.8  # a step may complete up to this long after its window closes
    min_face_fraction: float = 0.8  # of the samples outside profile windows
    blink_drop: float = 0.7  # a blink: eye aspect ratio under this fraction of the open-eye baseline
    blink_min_s: float = 0.05
    blink_max_s: float = 0.7
    flash_min_corr: float = 0.6  # face chroma response vs flashed colours (Pearson), pass at or above
    #: Overall fit at or above which up to a third of the flashes may read one hue step off (review, not fail):
    #: genuine sessions on a noisy camera fit at 0.87-0.92 with two such flashes; replays made for another
    #: script fit at 0.72 at most in the attack suite.
    flash_hue_shift_corr: float = 0.85
    flash_min_amplitude: float = 0.015  # mean log-chroma response along the flashed colour
    flash_max_latency_s: float = 0.3
    #: Light on a 3-D head (issue 32): the ring just outside the face outline must respond at least this fraction
    #: of the face's front (forehead, nose), else fail; the front at least this many times the cheeks' sides,
    #: else review.
    flash_min_outside: float = 0.1
    flash_min_front_to_side: float = 1.08
    identity_max_distance: float = 0.6  # embeddings of the video's own face further apart than this: a switch
    max_jump_widths: float = 0.6  # face centre jump between neighbouring samples, in face widths
    #: ID photo match, dlib ResNet euclidean distance: pass at or below match, fail above reject, review between.
    #: Set from impostor pairs (df_master + LFW) by `deepshield liveness calibrate-match`; see docs/liveness.md.
    id_match_distance: float = 0.485
    id_reject_distance: float = 0.60
    replay_hamming: int = 6  # keyframe perceptual hashes this close count as the same frame
    replay_face_pdq: int = 31  # face-crop PDQ hashes (any rotation/flip) this close count as the same face image
    replay_fail_fraction: float = 0.5
    replay_review_fraction: float = 0.25
    #: Head motion (`liveness.trajectory`): runs of windows correlating at least this much with an earlier
    #: session's at one time alignment count as its; a share of the session covered by them at or above fail
    #: fails, at or above review reviews. Set on the attack suite: at 0.5 no trial of any kind matched another
    #: person's sessions, and no genuine one matched among 232 (0.45 let four cover 44-46%): see docs/liveness.md.
    replay_motion_ncc: float = 0.5
    replay_motion_fail: float = 0.4
    replay_motion_review: float = 0.3
    #: Forgery run rule (review): this many consecutive keyframes (about 0.5 s apart) all scored at or above the
    #: run score. Fitted on genuine sessions of segments held apart from the reported suite: see docs/liveness.md.
    forgery_run_frames: int = 3
    forgery_run_score: float = 0.58
    #: Warped-turn rule (`signals/warp.py`, model `warp_turn`): this many turned frames (sampled about 7 a
    #: second) with a warp probability at or above the fail score fail the session; the review count at the
    #: review score reviews it. Set above every real turned photo and video frame (models/MODEL_CARD_warp.md).
    #: Only faces turned at least this far are judged (the model scores from 15 degrees): a turn step needs 30,
    #: and the genuine `lp_d12` sessions' noisy frames at 15 to 21 degrees scored up to 0.99.
    warp_min_yaw: float = 25.0
    warp_fail_frames: int = 3
    warp_fail_score: float = 0.98
    warp_review_frames: int = 2
    warp_review_score: float = 0.95
    review_below_score: float = 0.7

    def to_dict(self) -> JsonObject:
        return asdict(self)
