"""`audio-visual-retrieval`: rank a set of clips for a query clip through the joint embedding space."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import numpy as np
import torch
from transformers import Pipeline

from .base import AudioVisualInputMixin, resolve_modality
from .embeddings import encode_modalities, supported_embedding_modalities, visual_embedding_spaces

__all__ = ["AudioVisualRetrievalPipeline"]

_EMBED_KEY = {"audio": "audio_embeds", "visual": "visual_embeds", "text": "text_embeds"}


class AudioVisualRetrievalPipeline(AudioVisualInputMixin, Pipeline):
    """Rank candidate clips for a query with a contrastive audio-visual model (CAV-MAE now; VATT later).

    The query is embedded in `query_modality` and each candidate in `candidate_modality` (by default the other
    one), then candidates are sorted by cosine similarity, as in CAV-MAE's `retrieval.py` (audio -> visual:
    the audio of the query against the frames of the candidates; visual -> audio the other way round).

    ```python
    retriever = pipeline("audio-visual-retrieval", model="path/to/cav-mae")
    retriever("query.mp4", candidates=["a.mp4", "b.mp4", "c.mp4"], query_modality="audio", top_k=2)
    # [{"index": 2, "candidate": "c.mp4", "score": 0.71}, {"index": 0, "candidate": "a.mp4", "score": 0.45}]

    bank = retriever.embed_candidates(["a.mp4", "b.mp4", "c.mp4"])     # embed a collection once ...
    retriever(["q1.mp4", "q2.wav"], candidate_embeddings=bank, candidate_names=["a", "b", "c"])  # ... query often
    ```

    Call arguments:
        candidates: clips (paths, bytes, dicts of arrays) or a `{name: clip}` mapping; embedded once per call.
        candidate_embeddings (`[N, D]` tensor/array): precomputed candidate embeddings (see `embed_candidates`).
        candidate_names (`list[str]`, *optional*): names returned with the ranking (default: the paths / keys).
        query_modality (`"audio"`, `"visual"` or `"text"`, defaults to `"audio"`): how the query is embedded.
            Text queries (`{"text": "..."}`) need a model with a text tower (VATT); the candidates' frames are then
            embedded in VATT's video-text space (audio/visual queries use its video-audio space). With
            `candidate_embeddings=` for text queries, build the bank with `embed_candidates(..., space="text")`. `"video"` is a deprecated name
            of `"visual"` (here and for `candidate_modality`).
        candidate_modality (`"audio"` or `"visual"`): how the candidates are embedded (default: `"visual"` for
            audio/text queries, `"audio"` for visual queries).
        top_k (`int`, *optional*): length of the ranking (all candidates by default).
        frames (`"all"`, `"middle"` or `int`, defaults to `"middle"`): frames used for visual embeddings.
    """

    _load_processor = True
    _load_image_processor = False
    _load_feature_extractor = False
    _load_tokenizer = False

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._ensure_batchable()
        supported = supported_embedding_modalities(self.model)
        if "audio" not in supported and "visual" not in supported:
            raise ValueError(f"{type(self.model).__name__} has no joint-space embeddings; retrieval needs them")

    # Parameters ---------------------------------------------------------------------------------------------------
    @staticmethod
    def _modalities(query_modality, candidate_modality) -> tuple[str, str]:
        query_modality = resolve_modality(query_modality or "audio", "query_modality", ("audio", "visual", "text"))
        if candidate_modality is None:
            candidate_modality = "audio" if query_modality == "visual" else "visual"
        candidate_modality = resolve_modality(candidate_modality, "candidate_modality", ("audio", "visual"))
        return query_modality, candidate_modality

    def _sanitize_parameters(
        self,
        candidates=None,
        candidate_embeddings=None,
        candidate_names=None,
        query_modality=None,
        candidate_modality=None,
        top_k=None,
        frames=None,
        **kwargs,
    ):
        if kwargs:
            raise TypeError(f"unexpected argument(s) {sorted(kwargs)} for audio-visual-retrieval")
        preprocess, forward, postprocess = {}, {}, {}
        if query_modality is not None:
            preprocess["query_modality"] = query_modality
            forward["query_modality"] = query_modality
        if frames is not None:
            preprocess["frames"] = frames
        if candidate_embeddings is not None:
            postprocess["candidate_embeddings"] = candidate_embeddings
            postprocess["candidate_names"] = candidate_names
        if top_k is not None:
            if not isinstance(top_k, int) or top_k < 1:
                raise ValueError(f"top_k must be a positive integer, got {top_k!r}")
            postprocess["top_k"] = top_k
        return preprocess, forward, postprocess

    # Candidate bank -----------------------------------------------------------------------------------------------
    def embed_candidates(
        self, candidates, modality: str = "visual", batch_size: int | None = None, frames="middle", progress: bool = False,
        space: str | None = None,
    ) -> torch.Tensor:
        """Embed clips in `modality` (`"audio"` or `"visual"`), `batch_size` at a time -> `[N, D]` float tensor (CPU).

        `space` (models with several joint spaces, VATT): `"text"` embeds the frames in the video-text space, for
        text queries; default the video-audio space."""
        modality = resolve_modality(modality, "modality", ("audio", "visual"))
        if modality is None:
            raise ValueError("modality must be 'audio' or 'visual', got None")
        if space == "text" and modality != "visual":
            raise ValueError("only frames have a video-text embedding (space='text' needs modality='visual')")
        items = list(candidates.values()) if isinstance(candidates, Mapping) else list(candidates)
        if not items:
            raise ValueError("candidates: empty")
        batch_size = batch_size or self._batch_size or 8
        chunks = []
        iterator = range(0, len(items), batch_size)
        if progress:
            from tqdm.auto import tqdm

            iterator = tqdm(iterator, desc=f"embedding {len(items)} clips", unit="batch")
        for start in iterator:
            clips = [self.prepare_clip(item, modality=modality, frames=frames) for item in items[start : start + batch_size]]
            key = "input_values" if modality == "audio" else "pixel_values"
            batch = {key: torch.cat([clip[key] for clip in clips]).to(self.device)}
            with self.device_placement(), torch.inference_mode():
                embeds = encode_modalities(self.model, self._model_dtype_cast(batch),
                                           visual_space=space)[_EMBED_KEY[modality]]
            chunks.append(embeds.float().cpu())
        return torch.cat(chunks)

    @staticmethod
    def _names(candidates, candidate_names, count: int) -> list:
        if candidate_names is not None:
            names = list(candidate_names)
            if len(names) != count:
                raise ValueError(f"candidate_names has {len(names)} names for {count} candidates")
            return names
        if isinstance(candidates, Mapping):
            return list(candidates)
        if candidates is not None:
            return [str(c) if isinstance(c, (str, os.PathLike)) else i for i, c in enumerate(candidates)]
        return list(range(count))

    def __call__(self, inputs, candidates=None, candidate_embeddings=None, candidate_names=None, **kwargs):
        """Rank candidates for one query or each query of a list (see the class docstring)."""
        if (candidates is None) == (candidate_embeddings is None):
            raise ValueError("pass exactly one of candidates= (clips) or candidate_embeddings= (precomputed)")
        query_modality, candidate_modality = self._modalities(kwargs.get("query_modality"), kwargs.pop("candidate_modality", None))
        if candidates is not None:
            if isinstance(candidates, (str, os.PathLike, bytes)) or not isinstance(candidates, (Sequence, Mapping)):
                raise ValueError("candidates must be a list of clips or a {name: clip} mapping")
            # a text query meets the frames in the video-text space of a model with several joint spaces (VATT)
            space = "text" if query_modality == "text" and "text" in visual_embedding_spaces(self.model) else None
            if space == "text" and candidate_modality != "visual":
                raise ValueError("text queries are compared with frames (candidate_modality='visual'): the audio has "
                                 "no embedding in the video-text space")
            candidate_embeddings = self.embed_candidates(
                candidates, candidate_modality, batch_size=kwargs.get("batch_size"), frames=kwargs.get("frames", "middle"),
                space=space,
            )
        else:
            candidate_embeddings = torch.as_tensor(np.asarray(candidate_embeddings), dtype=torch.float32)
            if candidate_embeddings.ndim != 2:
                raise ValueError(f"candidate_embeddings must be [N, D], got shape {tuple(candidate_embeddings.shape)}")
        names = self._names(candidates, candidate_names, candidate_embeddings.shape[0])
        kwargs["query_modality"] = query_modality
        return super().__call__(inputs, candidate_embeddings=candidate_embeddings, candidate_names=names, **kwargs)

    # Query --------------------------------------------------------------------------------------------------------
    def preprocess(self, inputs, query_modality="audio", frames="middle"):
        if query_modality == "text":
            text = inputs.get("text") if isinstance(inputs, dict) else None
            tokenizer = getattr(self.processor, "tokenizer", None)
            if text is None or tokenizer is None:
                raise ValueError("text queries are {'text': '...'} and need a model with a tokenizer (VATT)")
            return dict(tokenizer([text], return_tensors="pt", padding=True))
        clip = self.prepare_clip(inputs, modality=query_modality, frames=frames)
        clip.pop("duration", None)
        return self._model_dtype_cast(clip)

    def _forward(self, model_inputs, query_modality="audio"):
        embeds = encode_modalities(self.model, model_inputs)
        return {"query_embeds": embeds[_EMBED_KEY[query_modality]]}

    def postprocess(self, model_outputs, candidate_embeddings=None, candidate_names=None, top_k=None):
        query = torch.nn.functional.normalize(model_outputs["query_embeds"][0].float(), dim=-1)
        bank = torch.nn.functional.normalize(candidate_embeddings.float(), dim=-1)
        if bank.shape[-1] != query.shape[-1]:
            raise ValueError(f"candidate embeddings have width {bank.shape[-1]}, the query {query.shape[-1]}")
        scores = bank @ query
        order = torch.argsort(scores, descending=True)
        if top_k is not None:
            order = order[:top_k]
        return [
            {"index": int(i), "candidate": candidate_names[int(i)], "score": float(scores[i])} for i in order.tolist()
        ]
