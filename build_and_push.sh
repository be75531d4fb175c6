#!/usr/bin/env bash
# Build the albert-ner SageMaker image (container/Dockerfile) and push it to Amazon ECR.
#
#   ./build_and_push.sh [options] [IMAGE_NAME]          IMAGE_NAME defaults to albert-ner
#
#   --region REGION     AWS region (else $AWS_REGION, $AWS_DEFAULT_REGION, then `aws configure get region`)
#   --tag TAG           image tag (default: latest)
#   --no-push           build and tag only, no ECR login or push: the local-mode debugging loop.
#                       The ECR name is tagged too when the account and region can be found.
#   --cpu               CPU-only TensorFlow (same as --build-arg TF_VARIANT=cpu); the default image
#                       carries the CUDA libraries and runs on GPU and CPU instances
#   --build-arg K=V     passed to docker build (BASE_IMAGE, TF_VARIANT, PRETRAINED); repeatable
#   --network NAME      network for the build's RUN steps (e.g. host, where only the host reaches PyPI)
#
# The ECR repository is created when missing. China regions (cn-*) use the amazonaws.com.cn registry host.
# Prints the image URI last, for Estimator(image_uri=...).
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
image_name=albert-ner
tag=latest
region=""
push=true
build_args=()

die() { echo "build_and_push.sh: $*" >&2; exit 1; }

while [ $# -gt 0 ]; do
    case "$1" in
        --region) [ $# -ge 2 ] || die "--region needs a value"; region=$2; shift 2 ;;
        --region=*) region=${1#*=}; shift ;;
        --tag) [ $# -ge 2 ] || die "--tag needs a value"; tag=$2; shift 2 ;;
        --tag=*) tag=${1#*=}; shift ;;
        --no-push) push=false; shift ;;
        --cpu) build_args+=(--build-arg TF_VARIANT=cpu); shift ;;
        --build-arg) [ $# -ge 2 ] || die "--build-arg needs KEY=VALUE"; build_args+=(--build-arg "$2"); shift 2 ;;
        --build-arg=*) build_args+=(--build-arg "${1#*=}"); shift ;;
        --network) [ $# -ge 2 ] || die "--network needs a value"; build_args+=(--network "$2"); shift 2 ;;
        --network=*) build_args+=(--network "${1#*=}"); shift ;;
        -h|--help) sed -n '2,18p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
        -*) die "unknown option $1 (see --help)" ;;
        *) image_name=$1; shift ;;
    esac
done
[[ "$image_name" =~ ^[a-z0-9][a-z0-9._/-]*$ ]] \
    || die "image name '$image_name': ECR repository names are lower-case letters, digits and . _ - /"

# ------------------------------------------------------------------ docker
command -v docker >/dev/null 2>&1 \
    || die "docker not found on PATH: install Docker Engine (https://docs.docker.com/engine/install/) or run utils/setup.sh"
if ! docker_error=$(docker info 2>&1 >/dev/null); then
    die "the Docker daemon does not answer (is it running, and may this user use it?): ${docker_error##*$'\n'}"
fi

# ------------------------------------------------------------------ AWS account and region
account=""
if command -v aws >/dev/null 2>&1; then
    if [ -z "$region" ]; then
        region=${AWS_REGION:-${AWS_DEFAULT_REGION:-$(aws configure get region 2>/dev/null || true)}}
    fi
    if sts_output=$(aws sts get-caller-identity --query Account --output text 2>&1); then
        account=$sts_output
    elif $push; then
        die "cannot read the AWS account from STS: not logged in? Run 'aws configure' or 'aws sso login'. AWS said: $sts_output"
    fi
elif $push; then
    die "aws not found on PATH: install the AWS CLI v2 (https://docs.aws.amazon.com/cli/latest/userguide/getting-started-install.html), or use --no-push"
fi
if $push && [ -z "$region" ]; then
    die "no AWS region: pass --region, set AWS_REGION, or run 'aws configure set region REGION'"
fi

registry=""
if [ -n "$account" ] && [ -n "$region" ]; then
    domain=amazonaws.com
    [[ "$region" == cn-* ]] && domain=amazonaws.com.cn
    registry="${account}.dkr.ecr.${region}.${domain}"
fi

# ------------------------------------------------------------------ build and tag
local_image="${image_name}:${tag}"
echo "Building ${local_image} from ${repo_root}/container/Dockerfile"
docker build -f "${repo_root}/container/Dockerfile" ${build_args[@]+"${build_args[@]}"} -t "$local_image" "$repo_root"

if [ -n "$registry" ]; then
    image_uri="${registry}/${image_name}:${tag}"
    docker tag "$local_image" "$image_uri"
else
    image_uri=$local_image
    echo "build_and_push.sh: no AWS account/region found: tagged ${local_image} only" >&2
fi

if ! $push; then
    echo "Built ${image_uri} (not pushed). Try it: docker run --rm -v \"\$PWD/ml:/opt/ml\" ${local_image} train"
    echo "$image_uri"
    exit 0
fi

# ------------------------------------------------------------------ ECR repository, login, push
if ! aws ecr describe-repositories --region "$region" --repository-names "$image_name" >/dev/null 2>&1; then
    echo "Creating ECR repository ${image_name} in ${region}"
    aws ecr create-repository --region "$region" --repository-name "$image_name" >/dev/null \
        || die "could not create ECR repository ${image_name} in ${region} (does this identity have ecr:CreateRepository?)"
fi
aws ecr get-login-password --region "$region" | docker login --username AWS --password-stdin "$registry" >/dev/null \
    || die "docker login to ${registry} failed (ecr:GetAuthorizationToken allowed? region right?)"
docker push "$image_uri"
echo "Pushed ${image_uri}"
echo "$image_uri"
