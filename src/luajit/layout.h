/*
** LuaJIT memory layout of one target, as discovered at attach time.
**
** This header is shared by the userspace walker and the BPF programs:
** it holds only fixed-size integers so both sides agree byte for byte.
** Every offset is in bytes from the start of the named struct.
*/
#ifndef LUASPY_LAYOUT_H
#define LUASPY_LAYOUT_H

#include <linux/types.h>

/* Which LuaJIT family the target was built from. */
enum lj_flavor {
  LJ_FLAVOR_UNKNOWN = 0,
  LJ_FLAVOR_UPSTREAM = 1,  /* LuaJIT 2.1 (Debian's `luajit`, 2022) */
  LJ_FLAVOR_OPENRESTY = 2, /* openresty/luajit2 (Debian's `luajit2`) */
  LJ_FLAVOR_HEAD = 3,      /* LuaJIT 2.1 after the 2023 rewrites */
};

/* g->vmstate values are ~LJ_VMST_*; positive values are trace numbers. */
#define LJ_VMST_INTERP (-1)
#define LJ_VMST_C (-2)
#define LJ_VMST_GC (-3)
#define LJ_VMST_EXIT (-4)
#define LJ_VMST_RECORD (-5)
#define LJ_VMST_OPT (-6)
#define LJ_VMST_ASM (-7)

/* Frame link types (ftsz & 7), lj_frame.h. */
#define LJ_FRAME_LUA 0
#define LJ_FRAME_C 1
#define LJ_FRAME_CONT 2
#define LJ_FRAME_VARG 3
#define LJ_FRAME_LUAP 4
#define LJ_FRAME_CP 5
#define LJ_FRAME_PCALL 6
#define LJ_FRAME_PCALLH 7

/* GC64 tagged values: the top 17 bits hold the itype. */
#define LJ_GC64_PTRMASK 0x00007fffffffffffULL
#define LJ_TAG_STR 0x1fffbU
#define LJ_TAG_THREAD 0x1fff9U
#define LJ_TAG_PROTO 0x1fff8U
#define LJ_TAG_FUNC 0x1fff7U
#define LJ_TAG_TRACE 0x1fff6U
#define LJ_TAG_CDATA 0x1fff5U
#define LJ_TAG_TAB 0x1fff4U
#define LJ_TAG_UDATA 0x1fff3U

/* gct byte (~itype) of GC objects. */
#define LJ_GCT_STR 4
#define LJ_GCT_UPVAL 5
#define LJ_GCT_THREAD 6
#define LJ_GCT_PROTO 7
#define LJ_GCT_FUNC 8
#define LJ_GCT_TRACE 9
#define LJ_GCT_CDATA 10
#define LJ_GCT_TAB 11
#define LJ_GCT_UDATA 12

struct lj_layout {
  __u32 flavor; /* enum lj_flavor */
  __u32 gc64;   /* 1: 64-bit GC refs, two-slot frames (LJ_FR2) */

  /* GG_State: the block holding the main lua_State, global_State,
   * jit_State, hot counters and the dispatch table. */
  __u32 gg_g, gg_J, gg_hotcount, gg_dispatch, gg_size;
  __u32 dispatch_len; /* entries in the dispatch table */

  /* lua_State */
  __u32 L_gct, L_glref, L_base, L_top, L_maxstack, L_stack, L_cframe;
  __u32 L_stacksize, L_size;

  /* global_State */
  __u32 g_allocf, g_allocd, g_gc_total, g_gc_root, g_strmask, g_strhash;
  __u32 g_vmstate, g_mainthref, g_registrytv, g_cur_L, g_jit_base;
  __u32 g_hookmask;

  /* jit_State */
  __u32 J_flags, J_state, J_trace, J_sizetrace, J_param, J_nparam;
  __u32 J_mcarea, J_szmcarea, J_szallmcarea;

  /* C frame (x86_64 SysV): what lj_vm_* push below the Lua stack */
  __u32 cf_prev, cf_pc, cf_L, cf_nres;

  /* GCfunc */
  __u32 fn_ffid, fn_nupvalues, fn_pc, fn_cf, fn_uvptr;
  /* GCproto; the bytecode starts right after it (pt_size bytes in) */
  __u32 pt_sizebc, pt_k, pt_sizekgc, pt_sizeuv, pt_chunkname, pt_firstline;
  __u32 pt_numline, pt_lineinfo, pt_uvinfo, pt_varinfo, pt_size;
  /* GCstr */
  __u32 str_len, str_data;
  /* GCtab */
  __u32 tab_array, tab_node, tab_asize, tab_hmask, tab_metatable;
  __u32 node_size; /* Node: val TValue @0, key TValue @8, next @16 */
  /* GCtrace */
  __u32 tr_nsnap, tr_snap, tr_snapmap, tr_startpt, tr_startpc, tr_szmcode;
  __u32 tr_mcode, tr_traceno, tr_link, tr_root, tr_linktype;
  __u32 snap_size, snap_mapofs, snap_mcofs, snap_nent;

  /* -- For the heap walker (luaspy heap); sizes are sizeof() values -- */
  __u32 L_openupval, L_env;
  __u32 g_gc_mmudata, g_uvhead, g_ctype_state, g_gcroot, g_ngcroot;
  __u32 tab_colo, tab_size;
  __u32 ud_env, ud_len, ud_metatable, ud_size;
  __u32 cd_ctypeid, cd_size, cts_tab, ctype_size;
  __u32 uv_next, uv_v, uv_size;
  __u32 fn_env, fn_cupvalue; /* GCfuncC.upvalue; GCfuncL.uvptr is fn_uvptr */
  __u32 pt_sizept;
  __u32 tr_nins, tr_nk, tr_nsnapmap, tr_size, irins_size;

  /* -- For `luaspy jit`; J_penalty == 0: this build's JIT state is not
   *    known. J->cur, the trace being recorded, is at offset 0. -- */
  __u32 J_penalty, J_penaltyslot, J_errinfo, J_mctop, J_mcbot;
  __u32 g_dispatchmode, snap_count;
  __u32 penalty_size; /* HotPenalty: pc @0, val u16 @8, reason u16 @10 */
  /* Bytecode numbers: FORL and FUNCF start the hot-counting families
   * (FORL IFORL JFORL ITERL IITERL JITERL LOOP ILOOP JLOOP, FUNCF IFUNCF
   * JFUNCF FUNCV IFUNCV JFUNCV); a blacklisted ITERN becomes ITERC. */
  __u32 bc_forl, bc_funcf, bc_iterc, bc_max;
};

#endif
