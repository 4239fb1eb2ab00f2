"""Hub integration: model cards (`model_card`) and self-contained remote code + upload (`remote_code`)."""

from .remote_code import (
    REMOTE_CODE_AUTO_CLASSES,
    RemoteCodeError,
    export_remote_code,
    flat_module_name,
    push_to_hub,
    save_pretrained_with_remote_code,
)

__all__ = [
    "REMOTE_CODE_AUTO_CLASSES",
    "RemoteCodeError",
    "export_remote_code",
    "flat_module_name",
    "push_to_hub",
    "save_pretrained_with_remote_code",
]
