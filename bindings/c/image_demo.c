/* Loads an image, turns it into a normalised float tensor, resizes it and runs an activation; then shows that
 * corrupt data and a missing file are reported as errors. Usage: image_demo [path] (default: the bundled
 * bindings/c/data/sample.png, a 64x48 crop of scikit-image's CC0 "chelsea" photo). Exits non-zero on failure. */
#include <stdio.h>
#include <stdlib.h>
#include "visioncore.h"
#include "sample_check.h"

/* Reads at most `cap` bytes of a file; returns the count, or -1 when it cannot be opened. */
static long read_prefix(const char *path, unsigned char *buf, long cap) {
  FILE *f = fopen(path, "rb");
  if (!f) return -1;
  long n = (long)fread(buf, 1, (size_t)cap, f);
  fclose(f);
  return n;
}

int main(int argc, char **argv) {
  const char *path = argc > 1 ? argv[1] : "bindings/c/data/sample.png";
  vc_tensor *img = NULL, *chw = NULL, *small = NULL, *act = NULL;

  CHECK(vc_image_load(path, 3, &img));
  int64_t s[4];
  CHECK(vc_tensor_shape(img, s, 3));
  printf("loaded %s: uint8 [%lld, %lld, %lld]\n", path, (long long)s[0], (long long)s[1], (long long)s[2]);

  /* ImageNet normalisation, as torchvision's ToTensor + Normalize. */
  const float mean[3] = {0.485f, 0.456f, 0.406f}, std[3] = {0.229f, 0.224f, 0.225f};
  CHECK(vc_image_to_tensor(img, mean, std, 3, &chw));
  CHECK(vc_image_resize(chw, 24, 32, VC_RESIZE_BILINEAR, &small));
  CHECK(vc_unary(VC_GELU_ERF, small, 0.0f, &act));

  CHECK(vc_tensor_shape(act, s, 3));
  int64_t n = 0;
  CHECK(vc_tensor_numel(act, &n));
  float *v = malloc((size_t)n * sizeof *v);
  if (!v) return 1;
  CHECK(vc_tensor_copy_to(act, v, (size_t)n * sizeof *v));
  double sum = 0;
  for (int64_t i = 0; i < n; i++) sum += v[i];
  printf("gelu(resize(normalize(image))): float32 [%lld, %lld, %lld], first values %.4f %.4f %.4f, mean %.4f\n",
         (long long)s[0], (long long)s[1], (long long)s[2], v[0], v[1], v[2], sum / (double)n);
  free(v);
  if (s[0] != 3 || s[1] != 24 || s[2] != 32) { fprintf(stderr, "unexpected shape\n"); return 1; }

  /* A truncated copy of the file in memory and a missing file: both are errors with a message, not crashes. */
  unsigned char head[200];
  long got = read_prefix(path, head, (long)sizeof head);
  vc_tensor *bad = NULL;
  if (got <= 0) { fprintf(stderr, "cannot re-read %s\n", path); return 1; }
  if (vc_image_decode(head, (size_t)got, 3, &bad) == VC_OK || bad != NULL) {
    fprintf(stderr, "expected the truncated image to be refused\n");
    return 1;
  }
  printf("expected error: %s\n", vc_last_error_message());
  if (vc_image_load("bindings/c/data/no-such-image.png", 3, &bad) != VC_IO_ERROR) {
    fprintf(stderr, "expected an I/O error\n");
    return 1;
  }
  printf("expected error: %s\n", vc_last_error_message());

  vc_tensor_free(img); vc_tensor_free(chw); vc_tensor_free(small); vc_tensor_free(act);
  return 0;
}
