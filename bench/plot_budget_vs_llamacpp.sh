#!/usr/bin/env bash
# Plots the table printed by bench/budget_vs_llamacpp.sh (file: $1) as bits per weight over all
# of ref-m's 6,524,160 weights vs KLD (log), one series per kind of file, into $2 (PNG).
set -euo pipefail
TABLE=$1 PNG=$2 PARAMS=${PARAMS:-6524160}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
awk -F'|' -v p="$PARAMS" '
  /llama.cpp/ { split($2, a, " "); print $3 * 8 / p, $4, a[2] > "'"$dir"'/llamacpp.dat" }
  /lowbit --target-size/ && /:rot/ { print $3 * 8 / p, $4 > "'"$dir"'/rot.dat"; next }
  /lowbit --target-size/ { print $3 * 8 / p, $4 > "'"$dir"'/lowbit.dat" }' "$TABLE"
sort -n -o "$dir/lowbit.dat" "$dir/lowbit.dat"
sort -n -o "$dir/rot.dat" "$dir/rot.dat"
gnuplot <<GP
set terminal pngcairo size 1000,650 font 'sans,10' noenhanced
set output '$PNG'
set title 'ref-m, wikitext-2 test, ctx 256: file size vs KL divergence from fp32'
set xlabel 'bits per weight (file size over all weights)'
set ylabel 'mean KL divergence (nats/token)'
set logscale y
set grid
set key top right
set format y '%g'
plot '$dir/lowbit.dat' using 1:2 with linespoints pt 7 lw 2 lc rgb '#2c7fb8' title 'lowbit quantize --target-size (gptq)', \
     '$dir/rot.dat' using 1:2 with points pt 6 ps 1.3 lc rgb '#7fcdbb' title '... with :rot', \
     '$dir/llamacpp.dat' using 1:2 with points pt 5 ps 1.3 lc rgb '#d95f02' title 'llama.cpp + imatrix', \
     '$dir/llamacpp.dat' using 1:2:3 with labels offset 0.8,0.6 left font 'sans,8' notitle
GP
