/* Trains a registry model from C (issue 3: "parameters of a module"): the model's parameters as tensor handles
 * (vc_model_parameter, sharing the model's storage and gradients), an AdamW optimizer over them, cross-entropy
 * on a fixed synthetic batch, backward through vc_model_forward, and optimizer steps; then a training checkpoint
 * is saved and restored, and the trained weights are saved. Exits non-zero unless the loss falls.
 *   train_model [MODEL]      default resnet18; CNNs train on 64 x 64 inputs, PiT (fixed grid) on its input size */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "visioncore.h"
#include "sample_check.h"

enum { BATCH = 4, CLASSES = 5, SIDE = 64, STEPS = 4 };

/* One step: zero_grad, forward, loss, backward, step; the loss before the update goes to *out_loss. */
static int32_t step(vc_model *model, vc_optimizer *opt, vc_tensor *x, vc_tensor *y, float *out_loss) {
  vc_tensor *logits = NULL, *loss = NULL;
  int32_t status = vc_optimizer_zero_grad(opt);
  if (status == VC_OK) status = vc_model_forward(model, x, &logits);
  if (status == VC_OK) status = vc_loss(VC_LOSS_CROSS_ENTROPY, logits, y, 0.0, -100, VC_REDUCTION_MEAN, &loss);
  if (status == VC_OK) status = vc_tensor_copy_to(loss, out_loss, sizeof *out_loss);
  if (status == VC_OK) status = vc_tensor_backward(loss, NULL);
  if (status == VC_OK) status = vc_optimizer_step(opt);
  vc_tensor_free(logits);
  vc_tensor_free(loss);
  return status;
}

int main(int argc, char **argv) {
  const char *model_name = argc > 1 ? argv[1] : "resnet18";
  int64_t side = SIDE;
  vc_model *model = NULL;
  vc_optimizer *opt = NULL;
  vc_tensor *x = NULL, *y = NULL;

  CHECK(vc_model_create(model_name, CLASSES, 3, 0.0f, 7, &model));
  int64_t n = 0, elements = 0;
  CHECK(vc_model_parameter_count(model, &n));
  CHECK(vc_model_num_params(model, 0, &elements));
  printf("%s: %lld parameter tensors, %lld parameters\n", model_name, (long long)n, (long long)elements);
  if (strncmp(model_name, "pit", 3) == 0) {
    int64_t input_size[3];
    CHECK(vc_model_input_config(model, input_size, NULL, NULL, 0, NULL, NULL));
    side = input_size[1];
  }

  /* Handles to every parameter, named by their state-dict keys (the optimizer state is keyed by them). */
  vc_tensor **params = calloc((size_t)n, sizeof *params);
  const char **names = calloc((size_t)n, sizeof *names);
  if (!params || !names) return 1;
  for (int64_t i = 0; i < n; i++) {
    CHECK(vc_model_parameter(model, i, &params[i]));
    CHECK(vc_model_parameter_name(model, i, &names[i]));
  }
  printf("first parameter: %s\n", names[0]);
  CHECK(vc_optimizer_create("AdamW", params, n, names, NULL, "{\"lr\": 0.0002, \"weight_decay\": 0.05}", &opt));

  int64_t xshape[4] = {BATCH, 3, side, side}, yshape[1] = {BATCH};
  int64_t labels[BATCH] = {0, 3, 1, 4};
  CHECK(vc_tensor_rand_normal(xshape, 4, 0.0f, 1.0f, 123, &x));
  CHECK(vc_tensor_from_buffer(VC_INT64, yshape, 1, labels, sizeof labels, &y));

  float first = 0, last = 0;
  for (int s = 0; s < STEPS; s++) {
    CHECK(step(model, opt, x, y, s == 0 ? &first : &last));
    printf("step %d: loss %.4f\n", s, s == 0 ? first : last);
  }
  vc_tensor *g = NULL;
  CHECK(vc_tensor_grad(params[0], &g));
  if (!g) { fprintf(stderr, "no gradient reached %s\n", names[0]); return 1; }
  vc_tensor_free(g);

  /* A training checkpoint (all weights and BatchNorm statistics, optimizer state, counters; atomic), restored
   * after one more step: the weights return to the saved ones and stay attached to the optimizer. */
  const char *ckpt = "bindings/c/build/train_model.ckpt";
  int64_t count = 0;
  CHECK(vc_tensor_numel(params[n - 1], &count));
  size_t bytes = (size_t)count * sizeof(float);
  float *saved = malloc(bytes), *restored = malloc(bytes), tmp = 0;
  if (!saved || !restored) return 1;
  CHECK(vc_model_checkpoint_save(ckpt, model, opt, NULL, STEPS, 1));
  CHECK(vc_tensor_copy_to(params[n - 1], saved, bytes));
  CHECK(step(model, opt, x, y, &tmp));
  int64_t at_step = 0, at_epoch = 0;
  CHECK(vc_model_checkpoint_load(ckpt, model, opt, NULL, &at_step, &at_epoch));
  CHECK(vc_tensor_copy_to(params[n - 1], restored, bytes));
  for (int64_t i = 0; i < count; i++)
    if (restored[i] != saved[i]) { fprintf(stderr, "the checkpoint did not restore %s\n", names[n - 1]); return 1; }
  printf("checkpoint %s restored at step %lld, epoch %lld\n", ckpt, (long long)at_step, (long long)at_epoch);
  free(saved);
  free(restored);
  CHECK(vc_model_save(model, "bindings/c/build/trained_model.safetensors"));

  vc_optimizer_free(opt);
  for (int64_t i = 0; i < n; i++) vc_tensor_free(params[i]);
  free(params);
  free(names);
  vc_tensor_free(x);
  vc_tensor_free(y);
  vc_model_free(model);
  if (!(last < first)) { fprintf(stderr, "the loss did not fall: %.4f -> %.4f\n", first, last); return 1; }
  return 0;
}
