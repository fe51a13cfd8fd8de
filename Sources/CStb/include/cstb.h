// stb_image / stb_image_write / stb_image_resize from Debian's libstb-dev, compiled into this target with hidden
// symbols so that libvisioncore.so neither exports nor depends on them.
#ifndef VISIONCORE_CSTB_H
#define VISIONCORE_CSTB_H
#define STBIDEF  extern __attribute__((visibility("hidden")))
#define STBIWDEF extern __attribute__((visibility("hidden")))
#define STBIRDEF extern __attribute__((visibility("hidden")))
// Refuse images larger than this many pixels per side before allocating (decompression bombs, lying headers).
#define STBI_MAX_DIMENSIONS (1 << 15)
#include <stb/stb_image.h>
#include <stb/stb_image_write.h>
#include <stb/stb_image_resize.h>

/// Writes PNG/JPEG into a growable memory buffer; returns 0 on success. The caller frees *out with cstb_free.
int cstb_write_png_mem(const unsigned char *pixels, int w, int h, int comp, unsigned char **out, int *out_len);
int cstb_write_jpg_mem(const unsigned char *pixels, int w, int h, int comp, int quality, unsigned char **out, int *out_len);
void cstb_free(void *p);
#endif
