# Written by dime sweep: plots of sweep.csv. Run `gnuplot plot.gp` here.
set datafile separator ','
set datafile missing NaN
set terminal pngcairo size 900,600 noenhanced
set grid
set key outside right top
set xlabel 'local memory (% of the footprint)'
set ylabel 'ops/s'
set yrange [0:*]

set output 'by-latency-bw-1000000000.png'
set title 'bandwidth 1 Gb/s: one line per latency'
plot 'sweep.csv' skip 1 using (($5 == 2500 && $6 == 1000000000 && $10 == 0 && strcol(11) eq '') ? $4 : NaN):7 smooth unique with linespoints title '2500 ns', \
     'sweep.csv' skip 1 using (($5 == 5000 && $6 == 1000000000 && $10 == 0 && strcol(11) eq '') ? $4 : NaN):7 smooth unique with linespoints title '5000 ns', \
     'sweep.csv' skip 1 using (($5 == 7500 && $6 == 1000000000 && $10 == 0 && strcol(11) eq '') ? $4 : NaN):7 smooth unique with linespoints title '7500 ns', \
     'sweep.csv' skip 1 using (($5 == 10000 && $6 == 1000000000 && $10 == 0 && strcol(11) eq '') ? $4 : NaN):7 smooth unique with linespoints title '10000 ns'

set output 'by-latency-bw-5000000000.png'
set title 'bandwidth 5 Gb/s: one line per latency'
plot 'sweep.csv' skip 1 using (($5 == 2500 && $6 == 5000000000 && $10 == 0 && strcol(11) eq '') ? $4 : NaN):7 smooth unique with linespoints title '2500 ns', \
     'sweep.csv' skip 1 using (($5 == 5000 && $6 == 5000000000 && $10 == 0 && strcol(11) eq '') ? $4 : NaN):7 smooth unique with linespoints title '5000 ns', \
     'sweep.csv' skip 1 using (($5 == 7500 && $6 == 5000000000 && $10 == 0 && strcol(11) eq '') ? $4 : NaN):7 smooth unique with linespoints title '7500 ns', \
     'sweep.csv' skip 1 using (($5 == 10000 && $6 == 5000000000 && $10 == 0 && strcol(11) eq '') ? $4 : NaN):7 smooth unique with linespoints title '10000 ns'

set output 'by-latency-bw-10000000000.png'
set title 'bandwidth 10 Gb/s: one line per latency'
plot 'sweep.csv' skip 1 using (($5 == 2500 && $6 == 10000000000 && $10 == 0 && strcol(11) eq '') ? $4 : NaN):7 smooth unique with linespoints title '2500 ns', \
     'sweep.csv' skip 1 using (($5 == 5000 && $6 == 10000000000 && $10 == 0 && strcol(11) eq '') ? $4 : NaN):7 smooth unique with linespoints title '5000 ns', \
     'sweep.csv' skip 1 using (($5 == 7500 && $6 == 10000000000 && $10 == 0 && strcol(11) eq '') ? $4 : NaN):7 smooth unique with linespoints title '7500 ns', \
     'sweep.csv' skip 1 using (($5 == 10000 && $6 == 10000000000 && $10 == 0 && strcol(11) eq '') ? $4 : NaN):7 smooth unique with linespoints title '10000 ns'

set output 'by-bandwidth-lat-2500.png'
set title 'latency 2500 ns: one line per bandwidth'
plot 'sweep.csv' skip 1 using (($5 == 2500 && $6 == 1000000000 && $10 == 0 && strcol(11) eq '') ? $4 : NaN):7 smooth unique with linespoints title '1 Gb/s', \
     'sweep.csv' skip 1 using (($5 == 2500 && $6 == 5000000000 && $10 == 0 && strcol(11) eq '') ? $4 : NaN):7 smooth unique with linespoints title '5 Gb/s', \
     'sweep.csv' skip 1 using (($5 == 2500 && $6 == 10000000000 && $10 == 0 && strcol(11) eq '') ? $4 : NaN):7 smooth unique with linespoints title '10 Gb/s'

set output 'by-bandwidth-lat-5000.png'
set title 'latency 5000 ns: one line per bandwidth'
plot 'sweep.csv' skip 1 using (($5 == 5000 && $6 == 1000000000 && $10 == 0 && strcol(11) eq '') ? $4 : NaN):7 smooth unique with linespoints title '1 Gb/s', \
     'sweep.csv' skip 1 using (($5 == 5000 && $6 == 5000000000 && $10 == 0 && strcol(11) eq '') ? $4 : NaN):7 smooth unique with linespoints title '5 Gb/s', \
     'sweep.csv' skip 1 using (($5 == 5000 && $6 == 10000000000 && $10 == 0 && strcol(11) eq '') ? $4 : NaN):7 smooth unique with linespoints title '10 Gb/s'

set output 'by-bandwidth-lat-7500.png'
set title 'latency 7500 ns: one line per bandwidth'
plot 'sweep.csv' skip 1 using (($5 == 7500 && $6 == 1000000000 && $10 == 0 && strcol(11) eq '') ? $4 : NaN):7 smooth unique with linespoints title '1 Gb/s', \
     'sweep.csv' skip 1 using (($5 == 7500 && $6 == 5000000000 && $10 == 0 && strcol(11) eq '') ? $4 : NaN):7 smooth unique with linespoints title '5 Gb/s', \
     'sweep.csv' skip 1 using (($5 == 7500 && $6 == 10000000000 && $10 == 0 && strcol(11) eq '') ? $4 : NaN):7 smooth unique with linespoints title '10 Gb/s'

set output 'by-bandwidth-lat-10000.png'
set title 'latency 10000 ns: one line per bandwidth'
plot 'sweep.csv' skip 1 using (($5 == 10000 && $6 == 1000000000 && $10 == 0 && strcol(11) eq '') ? $4 : NaN):7 smooth unique with linespoints title '1 Gb/s', \
     'sweep.csv' skip 1 using (($5 == 10000 && $6 == 5000000000 && $10 == 0 && strcol(11) eq '') ? $4 : NaN):7 smooth unique with linespoints title '5 Gb/s', \
     'sweep.csv' skip 1 using (($5 == 10000 && $6 == 10000000000 && $10 == 0 && strcol(11) eq '') ? $4 : NaN):7 smooth unique with linespoints title '10 Gb/s'
