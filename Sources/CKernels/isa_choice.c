// The ISA level each kernel family runs at on this thread (vck_isa_choice; zeros: the best the CPU has). Tests pick
// levels with the vck_*_set_isa functions to check every variant on one machine; the choice is thread-local so
// that it never changes the bits of work that other threads (other tests) run at the same time, and VisionCore's
// worker pool copies the caller's choice into its workers for each job.
#include "ckernels.h"
#include "cpu.h"

_Thread_local vck_isa_choice vck_thread_isa;

void vck_isa_choice_get(vck_isa_choice *out) { *out = vck_thread_isa; }

void vck_isa_choice_set(const vck_isa_choice *choice) { vck_thread_isa = *choice; }
