/* Softmax, concat/split and topk from C: checks the results and the vc_tensor ** array arguments. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include "visioncore.h"
#include "sample_check.h"

int main(void) {
  int64_t shape[2] = {2, 3};
  float x[6] = {1, 2, 3, -1, 0, 1000};
  vc_tensor *tx = NULL, *ts = NULL, *tc = NULL, *tv = NULL, *ti = NULL;
  CHECK(vc_tensor_from_buffer(VC_FLOAT32, shape, 2, x, sizeof x, &tx));

  CHECK(vc_softmax(tx, -1, &ts));
  float s[6];
  CHECK(vc_tensor_copy_to(ts, s, sizeof s));
  printf("softmax rows:");
  for (int i = 0; i < 6; i++) printf(" %.4f", s[i]);
  printf("\n");
  if (fabsf(s[0] + s[1] + s[2] - 1.0f) > 1e-5f || fabsf(s[5] - 1.0f) > 1e-6f) return 1;

  /* Split the columns into [1, 2] and join them back. */
  int64_t sizes[2] = {1, 2};
  vc_tensor *parts[2] = {NULL, NULL};
  CHECK(vc_split(tx, sizes, 2, 1, parts, 2));
  CHECK(vc_concat(parts, 2, 1, &tc));
  float c[6];
  CHECK(vc_tensor_copy_to(tc, c, sizeof c));
  for (int i = 0; i < 6; i++) if (c[i] != x[i]) return 1;

  CHECK(vc_topk(tx, 2, 1, 1, 1, &tv, &ti));
  int64_t idx[4];
  CHECK(vc_tensor_copy_to(ti, idx, sizeof idx));
  printf("topk(2) indices: %lld %lld | %lld %lld\n", (long long)idx[0], (long long)idx[1], (long long)idx[2], (long long)idx[3]);
  if (idx[0] != 2 || idx[1] != 1 || idx[2] != 2 || idx[3] != 1) return 1;

  /* Bad input is an error, not a crash: an index out of range and a NULL array. */
  vc_tensor *bad_v = NULL, *bad_i = NULL, *bad_c = NULL;
  if (vc_topk(tx, 4, 1, 1, 1, &bad_v, &bad_i) == VC_OK || bad_v != NULL || bad_i != NULL) return 1;
  printf("expected error: %s\n", vc_last_error_message());
  if (vc_concat(NULL, 2, 0, &bad_c) == VC_OK || bad_c != NULL) return 1;

  vc_tensor_free(tx); vc_tensor_free(ts); vc_tensor_free(tc); vc_tensor_free(tv); vc_tensor_free(ti);
  vc_tensor_free(parts[0]); vc_tensor_free(parts[1]);
  printf("norm_demo: ok\n");
  return 0;
}
