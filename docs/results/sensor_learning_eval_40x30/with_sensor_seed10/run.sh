set -e
cd /work/main
export MUJOCO_GL=egl PYTHONUNBUFFERED=1
for f in /dev/shm/*; do fuser -s "$f" 2>/dev/null || rm -f "$f"; done
.venv/bin/python /tmp/proof13c/expert.py > /tmp/proof13c/expert.log 2>&1
.venv/bin/python examples/franka_reacher.py --env FrankaVisualReacher2-v0 --blank_image --time_limit 1200 --episode_length 4 --seed 10 --work_dir /tmp/proof13c/with_sensor --image_width 40 --image_height 30 --save_model_freq 1000000000 --async_mode --sensor rtrl_env.reacher.sensors:target_position > /tmp/proof13c/train.log 2>&1
CK=$(ls -d /tmp/proof13c/with_sensor/results/*/model/step_* | tail -1)
.venv/bin/python examples/franka_reacher.py --env FrankaVisualReacher2-v0 --blank_image --eval --load_model "$CK" --eval_episodes 20 --episode_length 4 --seed 10 --target_seed 10 --work_dir /tmp/proof13c/with_sensor/evaluation --image_width 40 --image_height 30 --sensor rtrl_env.reacher.sensors:target_position > /tmp/proof13c/eval.log 2>&1
echo finished
