/*
** LSD radix sort, 8 bits a pass.
*/
#include "radix.h"

struct kv *kv_sort_bits(struct kv *v, struct kv *tmp, size_t n, int lo, int hi)
{
  for (int shift = lo; shift < hi; shift += 8) {
    size_t at[257] = {0};
    struct kv *t;
    for (size_t i = 0; i < n; i++) at[((v[i].key >> shift) & 255) + 1]++;
    for (int b = 0; b < 256; b++) at[b + 1] += at[b];
    for (size_t i = 0; i < n; i++) tmp[at[(v[i].key >> shift) & 255]++] = v[i];
    t = v;
    v = tmp;
    tmp = t;
  }
  return v;
}

struct kv *kv_sort(struct kv *v, struct kv *tmp, size_t n)
{
  uint64_t differ = 0;
  for (size_t i = 1; i < n; i++) differ |= v[i].key ^ v[0].key;
  if (!differ) return v;
  return kv_sort_bits(v, tmp, n, __builtin_ctzll(differ),
                      64 - __builtin_clzll(differ));
}

uint64_t *u64_sort(uint64_t *v, uint64_t *tmp, size_t n)
{
  uint64_t differ = 0;
  for (size_t i = 1; i < n; i++) differ |= v[i] ^ v[0];
  if (!differ) return v;
  for (int shift = __builtin_ctzll(differ), hi = 64 - __builtin_clzll(differ);
       shift < hi; shift += 8) {
    size_t at[257] = {0};
    uint64_t *t;
    for (size_t i = 0; i < n; i++) at[((v[i] >> shift) & 255) + 1]++;
    for (int b = 0; b < 256; b++) at[b + 1] += at[b];
    for (size_t i = 0; i < n; i++) tmp[at[(v[i] >> shift) & 255]++] = v[i];
    t = v;
    v = tmp;
    tmp = t;
  }
  return v;
}
