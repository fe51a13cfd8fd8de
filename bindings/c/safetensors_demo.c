/* Writes tensors to a safetensors file, reads them back, and shows that a truncated copy is refused with a
 * message instead of crashing. Exits non-zero on any unexpected result. */
#include <stdio.h>
#include <string.h>
#include "visioncore.h"
#include "sample_check.h"

int main(void) {
  const char *path = "bindings/c/build/weights.safetensors";
  const char *truncated = "bindings/c/build/truncated.safetensors";
  int64_t shape[2] = {2, 3};
  float w[6] = {0.5f, -1.25f, 2, 3, -4, 5.5f};
  vc_tensor *t = NULL, *back = NULL;
  vc_tensor_map *map = NULL, *loaded = NULL;

  CHECK(vc_tensor_from_buffer(VC_FLOAT32, shape, 2, w, sizeof w, &t));
  CHECK(vc_tensor_map_create(&map));
  CHECK(vc_tensor_map_set(map, "layer.weight", t, VC_STORE_NATIVE));
  CHECK(vc_tensor_map_set(map, "layer.weight_f16", t, VC_STORE_F16));
  CHECK(vc_tensor_map_set_metadata(map, "format", "pt"));
  CHECK(vc_safetensors_save(map, path));

  CHECK(vc_safetensors_load(path, &loaded));
  int64_t count = 0;
  CHECK(vc_tensor_map_count(loaded, &count));
  for (int64_t i = 0; i < count; i++) {
    const char *name = NULL;
    CHECK(vc_tensor_map_name(loaded, i, &name));
    printf("tensor %lld: %s\n", (long long)i, name);
  }
  CHECK(vc_tensor_map_get(loaded, "layer.weight", &back));
  float got[6];
  CHECK(vc_tensor_copy_to(back, got, sizeof got));
  if (memcmp(got, w, sizeof w) != 0) { fprintf(stderr, "round trip changed the values\n"); return 1; }
  printf("round trip: exact\n");

  /* A truncated copy of the file must be refused with a format error. */
  FILE *in = fopen(path, "rb"), *out = fopen(truncated, "wb");
  if (!in || !out) { fprintf(stderr, "cannot copy the file\n"); return 1; }
  char buf[40];
  size_t n = fread(buf, 1, sizeof buf, in);
  fwrite(buf, 1, n, out);
  fclose(in); fclose(out);
  vc_tensor_map *bad = NULL;
  if (vc_safetensors_load(truncated, &bad) != VC_FORMAT_ERROR || bad != NULL) {
    fprintf(stderr, "a truncated file was not refused\n");
    return 1;
  }
  printf("expected error: %s\n", vc_last_error_message());

  vc_tensor_free(t); vc_tensor_free(back);
  vc_tensor_map_free(map); vc_tensor_map_free(loaded);
  return 0;
}
