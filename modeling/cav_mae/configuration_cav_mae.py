"""Configuration of CAV-MAE (Gong et al., "Contrastive Audio-Visual Masked Autoencoder", ICLR 2023)."""

from transformers import PreTrainedConfig

from ..common.configuration import strict_config

AUDIO_MASK_MODES = ("unstructured", "time", "freq", "tf")
CLASSIFICATION_MODES = ("multimodal", "audioonly", "videoonly", "missingaudioonly", "missingvideoonly")


@strict_config
class CavMaeConfig(PreTrainedConfig):
    r"""
    Configuration of the CAV-MAE models (`CavMaeModel`, `CavMaeForPreTraining`,
    `CavMaeForAudioVisualClassification`). The defaults are the released "Scale++" architecture: a ViT-B sized
    audio tower and visual tower (11 modality-specific layers each) followed by 1 layer shared by both modalities,
    an 8-layer 512-wide MAE decoder, 1024 x 128 fbank input and 224 x 224 frames.

    Architecture:
        hidden_size (`int`, defaults to 768): token width of the encoder.
        num_attention_heads (`int`, defaults to 12): heads of every encoder layer; must divide `hidden_size`.
        intermediate_size (`int`, defaults to 3072): MLP width of the encoder layers (`mlp_ratio` 4 in the original).
        num_modality_specific_layers (`int`, defaults to 11): layers of the audio tower and (separately) of the visual
            tower. Original argument `modality_specific_depth`.
        num_shared_layers (`int`, defaults to 1): layers shared by both modalities (the original `blocks_u`), each
            with three LayerNorm sets (joint, audio, visual). The original code hard-codes a total depth of 12, i.e.
            `num_shared_layers = 12 - modality_specific_depth`; here both counts are independent.
        hidden_act (`str`, defaults to `"gelu"`): MLP activation (exact, erf-based GELU like `torch.nn.GELU()`).
        layer_norm_eps (`float`, defaults to 1e-5): epsilon of every LayerNorm (PyTorch's default, used by the original).
        qkv_bias (`bool`, defaults to True): bias of the fused qkv projection.
        hidden_dropout_prob, attention_probs_dropout_prob (`float`, default 0.0): dropout (0 in the original).
        initializer_range (`float`, defaults to 0.02): std of the modality embeddings and the mask token at init.
        audio_length (`int`, defaults to 1024): number of fbank frames `T` of `input_values` `[B, T, num_mel_bins]`.
        num_mel_bins (`int`, defaults to 128): mel bins of `input_values`.
        image_size (`int`, defaults to 224): height and width of a frame.
        patch_size (`int`, defaults to 16): square patch side for both modalities.
        num_channels (`int`, defaults to 3): channels of a frame.
        trainable_position_embeddings (`bool`, *optional*): whether the position tables are trained. The original
            freezes them in pre-training (`tr_pos=False`) and trains them in fine-tuning (`tr_pos=True`); `None`
            picks that per class (frozen in `CavMaeForPreTraining`, trainable otherwise). The values always come
            from the checkpoint; a fresh model starts from the fixed 2-D sin-cos tables.

    Pre-training decoder and losses:
        decoder_hidden_size (`int`, defaults to 512), decoder_num_attention_heads (`int`, defaults to 16),
        decoder_intermediate_size (`int`, defaults to 2048), decoder_num_hidden_layers (`int`, defaults to 8).
        audio_mask_ratio, visual_mask_ratio (`float`, default 0.75): fraction of tokens removed in pre-training
            (`int(L * (1 - ratio))` tokens are kept, as in the original).
        audio_mask_mode (`str`, defaults to `"unstructured"`): `"unstructured"` or the structured ablation modes
            `"time"`, `"freq"`, `"tf"` (whole time columns / mel rows removed). Frames always use unstructured masking.
        norm_pix_loss (`bool`, defaults to True): normalise every target patch by its mean and (unbiased) variance.
        mae_loss_weight (`float`, defaults to 1.0): weight of the reconstruction loss (sum of audio and visual).
        contrastive_loss_weight (`float`, defaults to 0.01): weight of the contrastive loss (lambda_c).
        contrastive_temperature (`float`, defaults to 0.05): fixed (not learned) temperature of the similarity.
        bidirectional_contrastive_loss (`bool`, defaults to False): average the audio->visual and visual->audio
            InfoNCE terms (the "Symc" ablation) instead of the original single direction.
        unchained_contrastive_stream (`bool`, defaults to False): reproduce a quirk of the original pre-training
            encoder: its contrastive (modality-LayerNorm) stream feeds the SAME input to every shared layer, so with
            more than one shared layer only the last one counts. False (default) chains the shared layers like every
            other code path of the original. Irrelevant for 1 shared layer (all released checkpoints).

    Classification:
        num_labels / id2label / label2id / problem_type: standard Transformers fields
            (`"multi_label_classification"` for AudioSet, `"single_label_classification"` for VGGSound).
        finetuning_mode (`str`, *optional*): the original mode the classifier was fine-tuned with (shown in model
            cards). `"multimodal"` makes the classifier answer a single modality with the original's
            missing-modality mode (`missingaudioonly` / `missingvideoonly`) unless a `mode` is passed; see
            `CavMaeForAudioVisualClassification`.
        unimodal_loss_weight (`float`, defaults to 0.0): in multimodal mode with labels, add this weight times the
            losses of the same head on the audio-only and the visual-only streams (modes `audioonly` /
            `videoonly`, computed from the same tower outputs), as in Gradient Blending (Wang et al., 2020): the
            joint classifier otherwise leans on whichever modality fits the training set fastest and is weak when
            that one is degraded. 0 (default) is the original fine-tuning loss.

    Field types are checked by `@strict`; ranges, divisibility and choices by `validate_architecture()`, at
    construction and again after `from_pretrained(..., field=value)` overrides. Both raise
    `huggingface_hub.errors.StrictDataclassError` naming the field.

    Example:

    ```python
    >>> from modeling.cav_mae import CavMaeConfig, CavMaeForAudioVisualClassification

    >>> # the released "Scale++" architecture, with a 527-class AudioSet head fine-tuned multimodally
    >>> configuration = CavMaeConfig(num_labels=527, problem_type="multi_label_classification",
    ...                              finetuning_mode="multimodal")
    >>> model = CavMaeForAudioVisualClassification(configuration)
    >>> model.config.num_audio_patches  # 8 mel-frequency rows x 64 time columns of 16 x 16 patches
    512
    ```
    """

    model_type = "cav-mae"

    hidden_size: int = 768
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    num_modality_specific_layers: int = 11
    num_shared_layers: int = 1
    hidden_act: str = "gelu"
    layer_norm_eps: float | int = 1e-5
    qkv_bias: bool = True
    hidden_dropout_prob: float | int = 0.0
    attention_probs_dropout_prob: float | int = 0.0
    initializer_range: float | int = 0.02
    audio_length: int = 1024
    num_mel_bins: int = 128
    image_size: int = 224
    patch_size: int = 16
    num_channels: int = 3
    trainable_position_embeddings: bool | None = None
    decoder_hidden_size: int = 512
    decoder_num_attention_heads: int = 16
    decoder_intermediate_size: int = 2048
    decoder_num_hidden_layers: int = 8
    audio_mask_ratio: float | int = 0.75
    visual_mask_ratio: float | int = 0.75
    audio_mask_mode: str = "unstructured"
    norm_pix_loss: bool = True
    mae_loss_weight: float | int = 1.0
    contrastive_loss_weight: float | int = 0.01
    contrastive_temperature: float | int = 0.05
    bidirectional_contrastive_loss: bool = False
    unchained_contrastive_stream: bool = False
    finetuning_mode: str | None = None
    unimodal_loss_weight: float | int = 0.0

    @classmethod
    def from_dict(cls, config_dict, **kwargs):
        # Transformers sets `from_pretrained(folder, field=value)` overrides on the built config without validating
        # them again; run the same `@strict` validation on the final values.
        result = super().from_dict(config_dict, **kwargs)
        (result[0] if isinstance(result, tuple) else result).validate()
        return result

    # Derived sizes -------------------------------------------------------------------------------------------------
    @property
    def audio_frequency_patches(self) -> int:
        """Rows of the audio patch grid (mel bins / patch)."""
        return self.num_mel_bins // self.patch_size

    @property
    def audio_time_patches(self) -> int:
        """Columns of the audio patch grid (frames / patch)."""
        return self.audio_length // self.patch_size

    @property
    def num_audio_patches(self) -> int:
        """Audio tokens, ordered frequency-major: index = frequency_patch * audio_time_patches + time_patch."""
        return self.audio_frequency_patches * self.audio_time_patches

    @property
    def visual_grid_size(self) -> int:
        return self.image_size // self.patch_size

    @property
    def num_visual_patches(self) -> int:
        return self.visual_grid_size**2

    # Validation (run by `@strict`) ---------------------------------------------------------------------------------
    def validate_architecture(self):
        """Ranges, divisibility and choices of every field (types are checked by `@strict` before this runs)."""
        super().validate_architecture()

        def require_int(name: str, minimum: int) -> None:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise ValueError(f"CavMaeConfig.{name} must be an integer >= {minimum}, got {value!r}")

        def require_range(name: str, low: float, high: float | None = None, low_inclusive: bool = True) -> None:
            value = getattr(self, name)
            too_low = value < low if low_inclusive else value <= low
            if too_low or (high is not None and value > high):
                bound = f"in [{low}, {high}]" if high is not None else (f">= {low}" if low_inclusive else f"> {low}")
                raise ValueError(f"CavMaeConfig.{name} must be {bound}, got {value!r}")

        for name in ("hidden_size", "num_attention_heads", "intermediate_size", "audio_length", "num_mel_bins",
                     "image_size", "patch_size", "num_channels", "decoder_hidden_size",
                     "decoder_num_attention_heads", "decoder_intermediate_size"):
            require_int(name, 1)
        for name in ("num_modality_specific_layers", "num_shared_layers", "decoder_num_hidden_layers"):
            require_int(name, 0)
        for width, heads in (("hidden_size", "num_attention_heads"), ("decoder_hidden_size", "decoder_num_attention_heads")):
            if getattr(self, width) % getattr(self, heads) != 0:
                raise ValueError(
                    f"CavMaeConfig.{width} ({getattr(self, width)}) must be divisible by {heads} ({getattr(self, heads)})"
                )
        for width in ("hidden_size", "decoder_hidden_size"):
            # the 2-D sin-cos position table splits the width in 4 (sin/cos x row/column)
            if getattr(self, width) % 4 != 0:
                raise ValueError(f"CavMaeConfig.{width} must be a multiple of 4 (2-D sin-cos table), got {getattr(self, width)}")
        for name in ("audio_length", "num_mel_bins", "image_size"):
            if getattr(self, name) % self.patch_size != 0:
                raise ValueError(
                    f"CavMaeConfig.{name} ({getattr(self, name)}) must be a multiple of patch_size ({self.patch_size})"
                )
        require_range("layer_norm_eps", 0.0, low_inclusive=False)
        require_range("initializer_range", 0.0)
        require_range("hidden_dropout_prob", 0.0, 1.0)
        require_range("attention_probs_dropout_prob", 0.0, 1.0)
        for name in ("audio_mask_ratio", "visual_mask_ratio"):
            require_range(name, 0.0, 1.0)
            if getattr(self, name) >= 1.0:
                raise ValueError(f"CavMaeConfig.{name} must be < 1 (at least one token must stay visible), got {getattr(self, name)}")
        require_range("mae_loss_weight", 0.0)
        require_range("contrastive_loss_weight", 0.0)
        require_range("contrastive_temperature", 0.0, low_inclusive=False)
        require_range("unimodal_loss_weight", 0.0)
        if self.audio_mask_mode not in AUDIO_MASK_MODES:
            raise ValueError(f"CavMaeConfig.audio_mask_mode must be one of {AUDIO_MASK_MODES}, got {self.audio_mask_mode!r}")
        if self.finetuning_mode is not None and self.finetuning_mode not in CLASSIFICATION_MODES:
            raise ValueError(
                f"CavMaeConfig.finetuning_mode must be None or one of {CLASSIFICATION_MODES}, got {self.finetuning_mode!r}"
            )


__all__ = ["AUDIO_MASK_MODES", "CLASSIFICATION_MODES", "CavMaeConfig"]
