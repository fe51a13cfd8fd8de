/* Classifies a photo with a registry model and timm-format weights:
 *   classify [MODEL [WEIGHTS [IMAGE]]]      defaults: resnet18, (see below), data/images/chelsea.png
 * Without WEIGHTS (no ImageNet weights ship with VisionCore) the sample first writes the weights of a seeded model
 * with vc_model_save and loads those, so the whole path runs: create, load (strictly checked), eval mode, timm's
 * eval transform, forward, softmax, top-5 with ImageNet class names. It also shows the error for weights of
 * another model. Exits non-zero on any unexpected result. */
#include <stdio.h>
#include <string.h>
#include "visioncore.h"
#include "sample_check.h"

int main(int argc, char **argv) {
  const char *model_name = argc > 1 ? argv[1] : "resnet18";
  const char *weights = argc > 2 ? argv[2] : NULL;
  const char *image = argc > 3 ? argv[3] : "data/images/chelsea.png";
  vc_model *model = NULL, *other = NULL;
  vc_tensor *x = NULL, *logits = NULL, *probs = NULL;

  if (!weights) {
    weights = "bindings/c/build/classify_weights.safetensors";
    vc_model *seeded = NULL;
    CHECK(vc_model_create(model_name, 1000, 3, 0.0f, 42, &seeded));
    CHECK(vc_model_save(seeded, weights));
    vc_model_free(seeded);
    printf("no weights given: wrote a seeded %s to %s\n", model_name, weights);
  }

  CHECK(vc_model_create(model_name, 1000, 3, 0.0f, 0, &model));
  CHECK(vc_model_load(model, weights));
  CHECK(vc_model_set_training(model, 0));

  int64_t input_size[3];
  float mean[4], std[4];
  double crop_pct = 0;
  int32_t interpolation = 0;
  CHECK(vc_model_input_config(model, input_size, mean, std, 4, &crop_pct, &interpolation));
  printf("%s: input %lldx%lldx%lld, crop_pct %.3f, %s, mean (%.3f, %.3f, %.3f)\n", model_name,
         (long long)input_size[0], (long long)input_size[1], (long long)input_size[2], crop_pct,
         interpolation == VC_RESIZE_BILINEAR ? "bilinear" : "bicubic", mean[0], mean[1], mean[2]);

  CHECK(vc_image_eval_transform_file(image, model, &x));
  CHECK(vc_set_grad_enabled(0)); /* inference: record no graph */
  CHECK(vc_model_forward(model, x, &logits));
  CHECK(vc_set_grad_enabled(1));
  CHECK(vc_softmax(logits, 1, &probs));

  float p[1000];
  CHECK(vc_tensor_copy_to(probs, p, sizeof p));
  printf("top-5 for %s:\n", image);
  int taken[5] = {-1, -1, -1, -1, -1};
  for (int r = 0; r < 5; r++) {
    int best = -1;
    for (int i = 0; i < 1000; i++) {
      int used = 0;
      for (int j = 0; j < r; j++) used |= taken[j] == i;
      if (!used && (best < 0 || p[i] > p[best])) best = i;
    }
    taken[r] = best;
    const char *label = NULL;
    CHECK(vc_imagenet_class_name(best, &label));
    printf("  %d. %-30s (%3d)  %.4f\n", r + 1, label, best, p[best]);
  }

  /* Weights of another model (here: a 10-class head) are refused with the mismatched keys and both shapes. */
  CHECK(vc_model_create(model_name, 10, 3, 0.0f, 0, &other));
  if (vc_model_load(other, weights) == VC_OK) {
    fprintf(stderr, "weights of a 1000-class model loaded into a 10-class one\n");
    return 1;
  }
  printf("expected error: %.160s...\n", vc_last_error_message());
  vc_model_free(other);
  other = NULL;
  if (vc_model_create("no_such_model", 1000, 3, 0.0f, 0, &other) == VC_OK || other != NULL) return 1;

  vc_tensor_free(probs);
  vc_tensor_free(logits);
  vc_tensor_free(x);
  vc_model_free(model);
  return 0;
}
