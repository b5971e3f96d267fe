#!/bin/sh
# The image's default command: say how to use the container, then wait (for `docker exec`, which NVIDIA's
# launcher uses) until the container is stopped. As PID 1 a shell gets SIGTERM only for a trapped signal.
trap 'exit 0' TERM INT
echo "tao_siamese_oi: waiting for tasks (docker exec <container> optical_inspection <action> -e spec.yaml)"
while :; do
  sleep 3600 &
  wait $!
done
