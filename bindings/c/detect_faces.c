/* Finds the faces in a photo with EXTD and the bundled official weights, prints the boxes, then shows that a
 * missing file, weights of another variant and a NULL detector are reported as errors. Usage:
 * detect_faces [image] [model] (default: data/images/astronaut.png, extd_32; run from the repository root so
 * that the bundled data/weights/extd is found). Exits non-zero on failure. */
#include <stdio.h>
#include <stdlib.h>
#include "visioncore.h"
#include "sample_check.h"

int main(int argc, char **argv) {
  const char *path = argc > 1 ? argv[1] : "data/images/astronaut.png";
  const char *model = argc > 2 ? argv[2] : "extd_32";
  vc_face_detector *det = NULL;
  vc_tensor *img = NULL, *boxes = NULL;

  CHECK(vc_face_detector_create(model, NULL, &det));  /* NULL: the bundled weights */
  CHECK(vc_image_load(path, 3, &img));
  /* Scale 0: the official demo's default (about 2 Mpixel); 1.0 would run at the photo's own size. */
  CHECK(vc_face_detector_detect(det, img, 0.5f, 0.0f, &boxes));

  int64_t shape[2];
  CHECK(vc_tensor_shape(boxes, shape, 2));
  long k = (long)shape[0];
  float *rows = malloc(sizeof(float) * (size_t)(k > 0 ? k : 1) * 5);
  if (!rows) return 1;
  CHECK(vc_tensor_copy_to(boxes, rows, sizeof(float) * (size_t)k * 5));
  printf("%ld face%s in %s (%s):\n", k, k == 1 ? "" : "s", path, model);
  for (long i = 0; i < k; i++) {
    const float *r = rows + 5 * i;
    printf("  box [%.1f, %.1f, %.1f, %.1f]  score %.4f\n", r[0], r[1], r[2], r[3], r[4]);
  }
  int found = k >= 1 && rows[4] > 0.9f;
  free(rows);

  /* Errors are statuses with a message, never crashes. */
  vc_tensor *none = NULL;
  vc_face_detector *wrong = NULL;
  if (vc_image_load("no/such/photo.png", 3, &none) == VC_OK) return 1;
  printf("missing photo: %s\n", vc_last_error_message());
  if (vc_face_detector_create("extd_64", "data/weights/extd/EXTD_32.safetensors", &wrong) == VC_OK || wrong) return 1;
  printf("wrong weights: %.100s...\n", vc_last_error_message());
  if (vc_face_detector_detect(NULL, img, 0.5f, 0.0f, &none) == VC_OK || none) return 1;
  printf("NULL detector: %s\n", vc_last_error_message());

  vc_tensor_free(boxes);
  vc_tensor_free(img);
  vc_face_detector_free(det);
  return found ? 0 : 1;
}
