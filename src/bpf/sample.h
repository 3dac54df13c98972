/*
** What the sampling BPF program (record.bpf.c) and `luaspy record` share:
** the maps' keys and values, and the sample records of the ring buffer.
** Fixed-size integers only, so both sides agree byte for byte.
*/
#ifndef LUASPY_BPF_SAMPLE_H
#define LUASPY_BPF_SAMPLE_H

#include "../luajit/layout.h"

/* Lua frames walked per sample, over all coroutines of the chain. The
 * walk is a bpf_loop, so this costs nothing unless the stack is deep. */
#define LS_MAX_FRAMES 2048
/* Coroutines resumed from Lua, below the running one. */
#define LS_MAX_CHAIN 8
/* pcall-protected C frames skipped at one stack slot. */
#define LS_MAX_CFSKIP 8
#define LS_MAX_OBJS 4
#define LS_MAX_PROCS 1024
#define LS_MAX_VMS 4096

/* procs: key = tgid. */
struct ls_proc {
  __u32 nvms;
  __u32 nobjs;
  __u64 single_dispatch; /* the VM to use when no register names one */
  __u64 text_lo[LS_MAX_OBJS], text_hi[LS_MAX_OBJS]; /* LuaJIT objects */
};

/* vms: one per lua_newstate, found by the dispatch table r14 points to. */
struct ls_vmkey {
  __u32 pid;
  __u32 pad;
  __u64 dispatch;
};

struct ls_vm {
  __u64 G, J, mainL;
  __u64 code_lo, code_hi; /* the VM's assembler code: rdx, rbx are valid */
  struct lj_layout lay;
};

/* enum lj_rawkind and enum lj_partial of luajit.h, which the BPF side
 * cannot include; src/record/ checks at compile time that they agree. */
#define LS_RAW_FUNC 0
#define LS_RAW_TRACE 1
#define LS_RAW_VM 2
#define LS_RAW_NATIVE 3

#define LS_OK 0
#define LS_PARTIAL_READ 1
#define LS_PARTIAL_BADLINK 2
#define LS_PARTIAL_BADFUNC 3
#define LS_PARTIAL_DEPTH 4
#define LS_PARTIAL_LOOP 5

/* A raw frame as struct lj_rawframe holds it (link types: LJ_FRAME_*). */
struct ls_frame {
  __u64 fn;
  __u64 pc;
  __u64 L;
  __s32 aux;
  __u8 kind;
  __u8 ftype;
  __u16 pad;
};

/* What came of a sample. */
enum ls_status {
  LS_WALKED = 0, /* frames hold the stack; partial says if it is whole */
  LS_NO_VM = 1,  /* the process has several VMs and no register said which */
  LS_IDLE = 2,   /* the VM runs no Lua: the host's own C code */
};

#define LS_F_KERNEL 1 /* sampled in the kernel; registers are the user's */
#define LS_F_REPEAT 2 /* only frames[0] sent: the others as under the key */

struct ls_sample {
  __u32 pid, tid;
  __u64 dispatch; /* the VM, with pid */
  __s32 vmstate;
  __u16 nframes;
  __u8 status;  /* enum ls_status */
  __u8 partial; /* LS_OK or LS_PARTIAL_* */
  __u32 flags;
  __u32 pad;
  __u64 time_ns;                         /* bpf_ktime_get_ns() when sampled */
  struct ls_frame frames[LS_MAX_FRAMES]; /* top first; nframes sent */
};

/* A sample's stack below its top frame, which changes less than the top
 * frame's PC: record sends those frames once, then only the key. */
struct ls_stackkey {
  __u64 hash; /* ls_hash_end of frames[1..nframes); 0: not keyed */
  __u64 dispatch;
  __u32 pid;
  __u16 nframes;
  __u16 gen; /* user space's stack cache, emptied when full */
};

/* What record.bpf.c sends per sample: the key (hash 0 for stacks of one
 * frame or none), then the sample: with LS_F_REPEAT only frames[0]. With
 * --native a struct ls_native (trace.h) comes first. */
struct ls_record {
  struct ls_stackkey key;
  struct ls_sample s;
};

/* The hash of a stack key: 64 bits over every byte of the frames, so that
 * two stacks of one VM and depth that differ share a key once in 2^64.
 * Four lanes, one per word of a frame, folded at the end: one chain of
 * multiplies through a 1000-frame stack would wait on itself. */
static inline __u64 ls_hash_step(__u64 h, __u64 v)
{
  h = (h ^ v) * 0x9e3779b97f4a7c15ull;
  return h ^ (h >> 31);
}

static inline void ls_hash_begin(__u64 lane[4])
{
  for (int i = 0; i < 4; i++) lane[i] = i + 1;
}

static inline void ls_hash_frame(__u64 lane[4], const struct ls_frame *f)
{
  const __u64 *w = (const __u64 *)f;
  _Static_assert(sizeof(*f) == 32, "a frame is four words");
  lane[0] = ls_hash_step(lane[0], w[0]);
  lane[1] = ls_hash_step(lane[1], w[1]);
  lane[2] = ls_hash_step(lane[2], w[2]);
  lane[3] = ls_hash_step(lane[3], w[3]);
}

static inline __u64 ls_hash_end(const __u64 lane[4], __u64 nframes)
{
  return ls_hash_step(
      ls_hash_step(ls_hash_step(ls_hash_step(nframes, lane[0]), lane[1]),
                   lane[2]),
      lane[3]);
}

/* counters: per-CPU array indices. */
enum ls_counter {
  LS_CNT_SAMPLES,  /* samples of target processes */
  LS_CNT_LOST,     /* ... that did not fit in the ring buffer */
  LS_CNT_UNCACHED, /* ... sent as a key user space no longer had */
  LS_NCOUNTERS
};

#endif
