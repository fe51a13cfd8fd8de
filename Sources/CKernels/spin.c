// Spin-wait hint for VisionCore's worker pool.
#include "ckernels.h"
#include "cpu.h"

void vck_cpu_relax(void) {
#ifdef VCK_X86
  _mm_pause();
#endif
}
