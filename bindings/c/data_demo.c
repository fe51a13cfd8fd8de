/* The data pipeline from C: an in-memory dataset, a shuffling loader with a flip + normalize transform and two
 * worker threads, CutMix on each batch (soft targets whose rows sum to 1), a batch rebuilt on its own that equals
 * the one the iteration gave, and bad arguments refused with a message. Exits non-zero on any unexpected result. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include "visioncore.h"
#include "sample_check.h"

enum { N = 24, C = 1, H = 8, W = 8, K = 4, B = 8 };

int main(void) {
  static float pixels[N * C * H * W];
  int64_t labels[N];
  for (int i = 0; i < N; i++) {
    labels[i] = i % K;
    for (int j = 0; j < C * H * W; j++) pixels[i * C * H * W + j] = (float)i + (float)j / (C * H * W);
  }
  int64_t xshape[4] = {N, C, H, W}, yshape[1] = {N};
  vc_tensor *x = NULL, *y = NULL;
  vc_dataset *ds = NULL;
  vc_transform *tf = NULL;
  vc_loader *loader = NULL;
  vc_mixer *cutmix = NULL;
  CHECK(vc_tensor_from_buffer(VC_FLOAT32, xshape, 4, pixels, sizeof pixels, &x));
  CHECK(vc_tensor_from_buffer(VC_INT64, yshape, 1, labels, sizeof labels, &y));
  CHECK(vc_dataset_from_tensors(x, y, &ds));
  float mean[1] = {12.0f}, std[1] = {6.0f};
  CHECK(vc_transform_create(&tf));
  CHECK(vc_transform_add_horizontal_flip(tf, 0.5));
  CHECK(vc_transform_add_normalize(tf, mean, std, 1));
  CHECK(vc_loader_create(ds, tf, B, 1, 0, 42, 2, &loader));
  CHECK(vc_mixer_cutmix(1.0, 1.0, K, 0.0, 7, &cutmix));

  int64_t batches = 0;
  CHECK(vc_loader_num_batches(loader, &batches));
  float first[B * C * H * W];
  for (int64_t b = 0; b < batches; b++) {
    vc_tensor *images = NULL, *blabels = NULL, *mixed = NULL, *targets = NULL, *lambdas = NULL;
    CHECK(vc_loader_batch(loader, 0, b, &images, &blabels));
    if (b == 0) CHECK(vc_tensor_copy_to(images, first, sizeof first));
    CHECK(vc_mixer_apply(cutmix, images, blabels, &mixed, &targets, &lambdas, NULL));
    float t[B * K], lam[B];
    CHECK(vc_tensor_copy_to(targets, t, sizeof t));
    CHECK(vc_tensor_copy_to(lambdas, lam, sizeof lam));
    for (int i = 0; i < B; i++) {
      float sum = 0;
      for (int k = 0; k < K; k++) sum += t[i * K + k];
      if (fabsf(sum - 1) > 1e-5f) { fprintf(stderr, "targets of sample %d sum to %g\n", i, sum); return 1; }
    }
    printf("batch %lld: lambda %.3f\n", (long long)b, lam[0]);
    vc_tensor_free(images); vc_tensor_free(blabels); vc_tensor_free(mixed); vc_tensor_free(targets); vc_tensor_free(lambdas);
  }

  /* Batch 0 rebuilt on its own (as a resumed run would) equals the one the prefetching iteration gave. */
  vc_tensor *again = NULL, *again_labels = NULL;
  float second[B * C * H * W];
  CHECK(vc_loader_batch(loader, 0, 0, &again, &again_labels));
  CHECK(vc_tensor_copy_to(again, second, sizeof second));
  if (memcmp(first, second, sizeof first) != 0) { fprintf(stderr, "batch 0 differs when rebuilt\n"); return 1; }
  vc_tensor_free(again); vc_tensor_free(again_labels);

  /* Bad input: a status and a message, never a crash. */
  vc_tensor *bad = NULL, *bad_labels = NULL;
  if (vc_loader_batch(loader, 0, batches, &bad, &bad_labels) != VC_INVALID_ARGUMENT || bad != NULL) return 1;
  printf("refused: %s\n", vc_last_error_message());
  vc_mixer *bad_mixer = NULL;
  if (vc_mixer_cutmix(0.0, 1.0, K, 0.0, 0, &bad_mixer) != VC_INVALID_ARGUMENT || bad_mixer != NULL) return 1;
  printf("refused: %s\n", vc_last_error_message());
  if (vc_dataset_free((vc_dataset *)loader) != VC_INVALID_HANDLE) return 1;

  vc_mixer_free(cutmix);
  vc_loader_free(loader);
  vc_transform_free(tf);
  vc_dataset_free(ds);
  vc_tensor_free(x);
  vc_tensor_free(y);
  return 0;
}
