"""DG-SCT audio-visual question answering (MUSIC-AVQA) fine-tuning on a tiny MUSIC-AVQA-layout dataset (CPU, seconds).

1. writes a tiny dataset in MUSIC-AVQA's layout from synthetic media: `json/avqa-train.json` / `avqa-val.json`
   (video_id, question_content with `<Object>` slots, templ_values, anser), `frames/<video_id>/%08d.jpg`,
   `audio_wave/<video_id>.npy` (`hf_av.data.dg_sct_tasks`);
2. builds the question and answer vocabularies from the train json as the original, and trains
   `DgSctForAudioVisualQuestionAnswering` through the shared entry point (`hf-av train --task question-answering`;
   loss = answer cross-entropy + 0.5 x the audio-visual matching loss on frames of other videos);
3. evaluates answer accuracy and saves a model folder (with the question tokenizer) that `AutoModel` /
   `AutoProcessor` load.

`python examples/dg_sct_question_answering.py [--out DIR] [--model FOLDER] [--steps 4]`. On a real MUSIC-AVQA copy:
`hf-av train --task question-answering --train_manifest data/AVQA/json/avqa-train.json --eval_manifest
data/AVQA/json/avqa-val.json ...`.
"""

from __future__ import annotations

from pathlib import Path

from _dg_sct_tiny import parse_arguments, train

from hf_av.data.dg_sct_tasks import write_synthetic_music_avqa

# the AVST head at toy width (the release works at the visual tower's 1536 channels and a 93-word vocabulary); at
# this width the default init std 0.02 leaves the answer logits (tanh(fused * question) products) near zero for many
# steps, so the toy model starts from std 0.2
HEAD = {"question_max_length": 14, "question_embedding_size": 8, "question_hidden_size": 8, "qa_num_attention_heads": 2,
        "match_hidden_sizes": [8, 4, 4], "initializer_range": 0.2}


def main() -> dict:
    args = parse_arguments(__doc__.splitlines()[0], "dg_sct_question_answering_run", learning_rate=1e-2)
    files = write_synthetic_music_avqa(Path(args.out) / "data" / "AVQA", num_videos=3, num_segments=3)
    return train("question-answering", "dg-sct-avqa", HEAD, files, args)


if __name__ == "__main__":
    main()
