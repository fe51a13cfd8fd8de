/* Runs a few VisionCore ops from C and prints the results; exits non-zero on any failure. */
#include <math.h>
#include <stdio.h>
#include "visioncore.h"
#include "sample_check.h"

int main(void) {
  int64_t shape_x[2] = {2, 3}, shape_w[2] = {4, 3};
  float x[6] = {1, -2, 3, -4, 5, -6};
  float w[12] = {1, 0, 0, 0, 1, 0, 0, 0, 1, 1, 1, 1};
  vc_tensor *tx = NULL, *tw = NULL, *ty = NULL, *tr = NULL;
  CHECK(vc_tensor_from_buffer(VC_FLOAT32, shape_x, 2, x, sizeof x, &tx));
  CHECK(vc_tensor_from_buffer(VC_FLOAT32, shape_w, 2, w, sizeof w, &tw));
  CHECK(vc_linear(tx, tw, NULL, &ty));
  CHECK(vc_unary(VC_RELU, ty, 0.0f, &tr));
  int64_t shape[2];
  CHECK(vc_tensor_shape(tr, shape, 2));
  float out[8];
  CHECK(vc_tensor_copy_to(tr, out, sizeof out));
  printf("relu(linear(x, w)) shape [%lld, %lld]:", (long long)shape[0], (long long)shape[1]);
  for (int i = 0; i < 8; i++) printf(" %g", out[i]);
  printf("\n");
  const float expected[8] = {1, 0, 3, 2, 0, 5, 0, 0};
  for (int i = 0; i < 8; i++)
    if (fabsf(out[i] - expected[i]) > 1e-6f) { fprintf(stderr, "mismatch at %d\n", i); return 1; }

  /* Errors are reported, not fatal: a shape mismatch and a NULL handle. */
  vc_tensor *bad = NULL;
  if (vc_matmul(tx, tx, &bad) == VC_OK || bad != NULL) { fprintf(stderr, "expected a shape error\n"); return 1; }
  printf("expected error: %s\n", vc_last_error_message());
  if (vc_unary(VC_RELU, NULL, 0.0f, &bad) != VC_INVALID_ARGUMENT) { fprintf(stderr, "expected NULL error\n"); return 1; }
  printf("expected error: %s\n", vc_last_error_message());

  vc_tensor_free(tx); vc_tensor_free(tw); vc_tensor_free(ty); vc_tensor_free(tr);
  vc_tensor_free(NULL);
  return 0;
}
