#!/bin/bash
# taketurns.sh: portico builds against each other and nginx, taking turns, with GC figures.
#
#	taketurns.sh ROUNDS DURATION FILE NAME=PORTICO_BINARY[:ENV,...] ...
#	e.g. flock /work/wt/bench.lock taketurns.sh 8 3s 1k.bin base=/tmp/portico-main new=/tmp/portico-branch
#
# It starts `sitebench -hold` for each build (with GODEBUG=gctrace=1 and any ENV), then runs
# `wrk -t2 -c64 -dDURATION --latency` against each build and the first nginx in turn, the order
# reversed every other round, and prints per run: requests/s, p50, p99, portico's CPU per 10k
# requests (/proc/PID/stat), collections, their stop-the-world time (gctrace's clock fields:
# total, count over 1 ms, max), and at the end each build's peak RSS. SITEBENCH names the
# sitebench binary (default /tmp/sitebench); scratch goes in ${TMPDIR:-/tmp}.
set -u
SITEBENCH=${SITEBENCH:-/tmp/sitebench}
T=${TMPDIR:-/tmp}
ROUNDS=$1; DUR=$2; FILE=$3; shift 3
declare -A URL PID SPID LOG
NAMES=()
cleanup(){ for n in "${NAMES[@]}"; do kill ${PID[$n]} 2>/dev/null; done; wait; }
trap cleanup EXIT
for spec in "$@"; do
  name=${spec%%=*}; rest=${spec#*=}; bin=${rest%%:*}; env="GODEBUG=gctrace=1"; [[ $rest == *:* ]] && env="$env,${rest#*:}"
  out=$T/hold-$name.out
  $SITEBENCH -hold -portico $bin -portico-env "$env" > $out 2>&1 &
  PID[$name]=$!; NAMES+=($name)
done
for n in "${NAMES[@]}"; do
  for i in $(seq 90); do grep -q "^Host:" $T/hold-$n.out && break; sleep 1; done
  URL[$n]=$(grep '^portico' $T/hold-$n.out | awk '{print $2}')
  SPID[$n]=$(grep "^portico" $T/hold-$n.out | sed "s/.*pid \([0-9]*\).*/\1/")
  LOG[$n]=$(readlink /proc/${SPID[$n]}/fd/2)
done
URL[nginx]=$(grep '^nginx' $T/hold-${NAMES[0]}.out | awk '{print $2}')
ALL=("${NAMES[@]}" nginx)
for n in "${ALL[@]}"; do wrk -t2 -c64 -d2s -H 'Host: alice-web.localhost' ${URL[$n]}/$FILE >/dev/null; done
echo "load $(uptime)"
cpu(){ awk '{print $14+$15}' /proc/$1/stat; }
for r in $(seq $ROUNDS); do
  order=("${ALL[@]}"); if (( r % 2 == 0 )); then order=($(printf '%s\n' "${ALL[@]}" | tac)); fi
  for n in "${order[@]}"; do
    extra=""
    if [ $n != nginx ]; then c0=$(cpu ${SPID[$n]}); l0=$(wc -l < ${LOG[$n]}); fi
    o=$(wrk -t2 -c64 -d$DUR --latency -H 'Host: alice-web.localhost' ${URL[$n]}/$FILE)
    rps=$(echo "$o" | awk '/Requests\/sec/{print $2}'); p50=$(echo "$o" | awk '$1=="50%"{print $2}'); p99=$(echo "$o" | awk '$1=="99%"{print $2}')
    reqs=$(echo "$o" | awk '/requests in/{print $1}')
    if [ $n != nginx ]; then
      c1=$(cpu ${SPID[$n]})
      extra=$(tail -n +$((l0+1)) ${LOG[$n]} | grep '^gc ' | awk -v req=$reqs -v c=$((c1-c0)) '{split($5,a,"+"); s+=a[1]+a[3]; if (a[1]+a[3]>m) m=a[1]+a[3]; if (a[1]+a[3]>1) big++; n++} END{printf "cpu/10k %4.0fms gcs %4d stw_sum %6.1fms stw>1ms %3d stw_max %5.1fms", c*10*10000/req, n, s, big, m}')
    fi
    printf "round %d %-7s rps %9s p50 %8s p99 %8s %s\n" $r $n $rps $p50 $p99 "$extra"
  done
done
echo "load $(uptime)"; for n in "${NAMES[@]}"; do echo "$n rss $(grep VmHWM /proc/${SPID[$n]}/status)"; done
