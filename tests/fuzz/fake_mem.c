/*
** proc_read & co over a synthetic image (image.h), linked into the fuzz
** targets instead of src/proc/mem.c. Reads follow mem.c's contract: the
** whole range or -1/EFAULT. process_vm_readv is interposed too, for the
** batched reads of src/heap/tmem.c, with the kernel's partial-read rule:
** bytes up to the first unreadable one, -1/EFAULT if there are none.
*/
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include <sys/uio.h>

#include "../../src/proc/proc.h"
#include "image.h"

struct region {
  uint64_t addr;
  const uint8_t *bytes;
  uint32_t len;
};

static struct region regions[IMAGE_MAX_REGIONS];
static size_t nregions;

static uint64_t rd64(const uint8_t *p)
{
  uint64_t v;
  memcpy(&v, p, 8);
  return v;
}

int image_load(const uint8_t *data, size_t size, struct image *img)
{
  struct image_hdr h;
  const struct lj_layout *lay;
  nregions = 0;
  if (size < sizeof(h)) return -1;
  memcpy(&h, data, sizeof(h));
  data += sizeof(h);
  size -= sizeof(h);
  while (size >= 12 && nregions < IMAGE_MAX_REGIONS) {
    struct region *r = &regions[nregions++];
    r->addr = rd64(data);
    memcpy(&r->len, data + 8, 4);
    data += 12;
    size -= 12;
    if (r->len > size) r->len = (uint32_t)size;
    r->bytes = data;
    data += r->len;
    size -= r->len;
  }
  lay = lj_layout_for((enum lj_flavor)(h.flavor % 3 + 1));
  memset(img, 0, sizeof(*img));
  img->vm = (struct lj_vm){.GG = h.GG,
                           .G = h.G,
                           .J = h.J,
                           .dispatch = h.dispatch,
                           .mainL = h.mainL,
                           .code_lo = h.code_lo,
                           .code_hi = h.code_hi,
                           .lay = lay};
  img->regs = (struct proc_regs){.tid = IMAGE_PID,
                                 .rip = h.rip,
                                 .rsp = h.rsp,
                                 .rbp = h.rbp,
                                 .rbx = h.rbx,
                                 .rdx = h.rdx,
                                 .r14 = h.r14,
                                 .r15 = h.r15};
  img->use_regs = h.flags & IMAGE_USE_REGS;
  return 0;
}

/* Copies what is readable of [addr, addr+len) into buf, up to the first
 * byte no region holds; returns the count. */
static size_t copy_out(uint64_t addr, uint8_t *buf, size_t len)
{
  size_t done = 0;
  while (done < len) {
    uint64_t a = addr + done;
    size_t i, n = 0;
    if (a < addr) break; /* wrapped */
    for (i = 0; i < nregions; i++) {
      const struct region *r = &regions[i];
      if (a >= r->addr && a - r->addr < r->len) {
        n = r->len - (size_t)(a - r->addr);
        if (n > len - done) n = len - done;
        memcpy(buf + done, r->bytes + (a - r->addr), n);
        break;
      }
    }
    if (!n) break;
    done += n;
  }
  return done;
}

int proc_read(pid_t pid, uint64_t addr, void *buf, size_t len)
{
  if (len == 0) return 0;
  if (pid != IMAGE_PID || addr == 0 || addr + len < addr ||
      copy_out(addr, buf, len) != len) {
    errno = EFAULT;
    return -1;
  }
  return 0;
}

int proc_read_u64(pid_t pid, uint64_t addr, uint64_t *v)
{
  return proc_read(pid, addr, v, sizeof(*v));
}

int proc_read_u32(pid_t pid, uint64_t addr, uint32_t *v)
{
  return proc_read(pid, addr, v, sizeof(*v));
}

ssize_t process_vm_readv(pid_t pid, const struct iovec *local,
                         unsigned long liovcnt, const struct iovec *remote,
                         unsigned long riovcnt, unsigned long flags)
{
  size_t total = 0, li = 0, loff = 0;
  (void)flags;
  if (pid != IMAGE_PID) {
    errno = ESRCH;
    return -1;
  }
  for (unsigned long ri = 0; ri < riovcnt; ri++) {
    uint64_t a = (uint64_t)(uintptr_t)remote[ri].iov_base;
    size_t left = remote[ri].iov_len;
    while (left && li < liovcnt) {
      size_t room = local[li].iov_len - loff, n = left < room ? left : room;
      size_t got = copy_out(a, (uint8_t *)local[li].iov_base + loff, n);
      total += got;
      if (got < n) goto out;
      a += n;
      left -= n;
      loff += n;
      if (loff == local[li].iov_len) li++, loff = 0;
    }
  }
out:
  if (total == 0 && riovcnt && remote[0].iov_len) {
    errno = EFAULT;
    return -1;
  }
  return (ssize_t)total;
}
