/* Minimizes sum(w * w) with AdamP from C: a parameter that requires gradients, backward, optimizer step (which
 * updates w's data in place), a saved optimizer state, and an unknown option refused with a message.
 * Exits non-zero on any unexpected result. */
#include <stdio.h>
#include "visioncore.h"
#include "sample_check.h"

/* One step of minimizing sum(w^2): forward, backward, update. */
static int32_t train_step(vc_tensor *w, vc_optimizer *opt) {
  vc_tensor *sq = NULL, *loss = NULL;
  int32_t status = vc_optimizer_zero_grad(opt);
  if (status == VC_OK) status = vc_binary(VC_MUL, w, w, &sq);
  if (status == VC_OK) status = vc_reduce(VC_REDUCE_SUM, sq, NULL, 0, 0, &loss);
  if (status == VC_OK) status = vc_tensor_backward(loss, NULL);
  if (status == VC_OK) status = vc_optimizer_step(opt);
  vc_tensor_free(sq);
  vc_tensor_free(loss);
  return status;
}

int main(void) {
  int64_t shape[2] = {2, 3};
  float init[6] = {1, -2, 3, -4, 5, -6}, now[6];
  vc_tensor *w = NULL;
  vc_optimizer *opt = NULL, *bad = NULL;
  const char *names[1] = {"fc.weight"};

  CHECK(vc_tensor_from_buffer(VC_FLOAT32, shape, 2, init, sizeof init, &w));
  CHECK(vc_tensor_set_requires_grad(w, 1));
  CHECK(vc_optimizer_create("AdamP", &w, 1, names, NULL,
                            "{\"lr\": 0.1, \"weight_decay\": 0.01, \"nesterov\": true}", &opt));
  for (int step = 0; step < 50; step++) CHECK(train_step(w, opt));
  CHECK(vc_tensor_copy_to(w, now, sizeof now));
  float before = 0, after = 0;
  for (int i = 0; i < 6; i++) { before += init[i] * init[i]; after += now[i] * now[i]; }
  printf("sum(w^2): %.3f -> %.3f after 50 AdamP steps\n", before, after);
  CHECK(vc_optimizer_save_state(opt, "bindings/c/build/optimizer.safetensors"));

  /* A training checkpoint (weights + optimizer state + counters, written atomically); one more step moves the
   * weights, and loading the checkpoint puts them back in the same tensor, which the optimizer keeps training. */
  CHECK(vc_checkpoint_save("bindings/c/build/train.ckpt", &w, names, 1, opt, 50, 1));
  CHECK(train_step(w, opt));
  int64_t step = 0, epoch = 0;
  CHECK(vc_checkpoint_load("bindings/c/build/train.ckpt", &w, names, 1, opt, &step, &epoch));
  float restored[6];
  CHECK(vc_tensor_copy_to(w, restored, sizeof restored));
  for (int i = 0; i < 6; i++)
    if (restored[i] != now[i]) { fprintf(stderr, "checkpoint did not restore the weights\n"); return 1; }
  printf("checkpoint restored step %lld, epoch %lld\n", (long long)step, (long long)epoch);
  CHECK(vc_optimizer_step(opt));  /* still linked to the restored tensor */
  if (vc_optimizer_create("AdamP", &w, 1, NULL, NULL, "{\"learning_rate\": 0.1}", &bad) == VC_OK || bad != NULL) {
    fprintf(stderr, "an unknown option was accepted\n");
    return 1;
  }
  printf("expected error: %s\n", vc_last_error_message());
  vc_optimizer_free(opt);
  vc_tensor_free(w);
  return after < before / 4 ? 0 : 1;
}
