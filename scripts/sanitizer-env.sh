# Sourced by scripts/test.sh and scripts/fuzz.sh: how the build-san/ binaries (ASan + UBSan +
# LeakSanitizer, scripts/build-san.sh) report. Every finding stops the process with a non-zero
# exit; there are no suppression files (a suppression needs a written reason next to it here).
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:halt_on_error=1:abort_on_error=1:check_initialization_order=1:strict_init_order=1:detect_stack_use_after_return=0:allocator_may_return_null=0:print_summary=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1:print_summary=1}"
export LSAN_OPTIONS="${LSAN_OPTIONS:-print_suppressions=0}"
