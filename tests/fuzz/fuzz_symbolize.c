/*
** libFuzzer target: the symbolizer (lj_symbolize, lj_frame_format,
** lj_proto_where) on the frames the walker finds in a fuzzed image, the
** way `luaspy dump` uses them: both line modes, one symbolizer (and its
** prototype cache) for all frames.
*/
#include <string.h>

#include "image.h"

#define MAX_FRAMES 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  static struct lj_rawframe frames[MAX_FRAMES];
  struct image img;
  struct lj_walk w = {.frames = frames, .max = MAX_FRAMES};
  struct lj_target t;
  struct lj_symbolizer *s;
  if (image_load(data, size, &img)) return 0;
  memset(&t, 0, sizeof(t));
  t.pid = IMAGE_PID;
  t.vms = &img.vm;
  t.nvms = 1;
  lj_walk_vm(IMAGE_PID, &img.vm, img.use_regs ? &img.regs : NULL, &w);
  if (!(s = lj_symbolizer_new(IMAGE_PID, &t))) return 0;
  for (size_t i = 0; i < w.n; i++) {
    struct lj_frame f;
    char buf[1024], chunk[LJ_CHUNK_MAX];
    int line;
    for (int mode = 0; mode <= 1; mode++) {
      memset(&f, 0, sizeof(f));
      lj_symbolize(s, &img.vm, &w.frames[i], mode, &f);
      lj_frame_format(&f, buf, sizeof(buf));
    }
    if (w.frames[i].kind == LJ_RAW_FUNC)
      lj_proto_where(s, &img.vm, w.frames[i].fn, w.frames[i].pc, chunk,
                     sizeof(chunk), &line);
  }
  lj_symbolizer_free(s);
  return 0;
}
