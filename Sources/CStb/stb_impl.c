#include "cstb.h"
#include <stdlib.h>
#include <string.h>
#define STB_IMAGE_IMPLEMENTATION
#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STB_IMAGE_RESIZE_IMPLEMENTATION
#include <stb/stb_image.h>
#include <stb/stb_image_write.h>
#include <stb/stb_image_resize.h>

typedef struct { unsigned char *data; int len, cap, failed; } membuf;

static void membuf_write(void *ctx, void *data, int size) {
  membuf *b = (membuf *)ctx;
  if (b->failed || size <= 0) return;
  if (b->len > 0x7fffffff - size) { b->failed = 1; return; }
  if (b->len + size > b->cap) {
    int cap = b->cap ? b->cap : 4096;
    while (cap < b->len + size) cap = cap > 0x3fffffff ? 0x7fffffff : cap * 2;
    unsigned char *p = (unsigned char *)realloc(b->data, (size_t)cap);
    if (!p) { b->failed = 1; return; }
    b->data = p; b->cap = cap;
  }
  memcpy(b->data + b->len, data, (size_t)size);
  b->len += size;
}

static int finish(membuf *b, int ok, unsigned char **out, int *out_len) {
  if (!ok || b->failed) { free(b->data); *out = NULL; *out_len = 0; return 1; }
  *out = b->data; *out_len = b->len; return 0;
}

int cstb_write_png_mem(const unsigned char *pixels, int w, int h, int comp, unsigned char **out, int *out_len) {
  membuf b = {0};
  int ok = stbi_write_png_to_func(membuf_write, &b, w, h, comp, pixels, w * comp);
  return finish(&b, ok, out, out_len);
}

int cstb_write_jpg_mem(const unsigned char *pixels, int w, int h, int comp, int quality, unsigned char **out, int *out_len) {
  membuf b = {0};
  int ok = stbi_write_jpg_to_func(membuf_write, &b, w, h, comp, pixels, quality);
  return finish(&b, ok, out, out_len);
}

void cstb_free(void *p) { free(p); }
