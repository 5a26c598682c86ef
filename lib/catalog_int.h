/*
 * Private interface: the on-disk layout of a catalog file, shared by the
 * builder and the reader.  flowdex-catalog(5) describes the same layout
 * for people; the two must change together, and any incompatible change
 * bumps FDX__CAT_VERSION.
 *
 * All integers are little-endian and read with fdx__le*(), never by
 * casting the mapping to a struct.  A file is: the header, then three
 * sections in any order inside the file (origins, entries, strings).
 *
 *  header (FDX__CAT_HEADER_SIZE bytes)
 *    0  magic "FDXCAT\r\n"
 *    8  u32 format version (1)
 *   12  u32 header size (96)
 *   16  u64 created, UTC seconds
 *   24  u32 entry count
 *   28  u32 origin count
 *   32  u64 origins offset   40  u64 origins size
 *   48  u64 entries offset   56  u64 entries size
 *   64  u64 strings offset   72  u64 strings size
 *   80  u32 entry record size (28)
 *   84  u32 CRC-32 of every byte after the header
 *   88  u32 flags (0)
 *   92  u32 CRC-32 of header bytes 0..91
 *
 *  origin record (24 bytes): u32 string offsets of family, archive,
 *    suite, codename, version, release.
 *
 *  entry record (28 bytes), sorted by size, then path, origin, kind:
 *    0 u64 size  8 u32 path  12 u32 package  16 u32 version  20 u32 arch
 *   24 u16 origin  26 u8 kind  27 u8 zero
 *
 *  strings: NUL-terminated, deduplicated; offset 0 is "".  The pool's
 *    last byte is NUL so every offset inside it has a terminator.
 */
#ifndef FLOWDEX_CATALOG_INT_H
#define FLOWDEX_CATALOG_INT_H

#define FDX__CAT_MAGIC "FDXCAT\r\n"
#define FDX__CAT_MAGIC_LEN 8
#define FDX__CAT_VERSION 1
#define FDX__CAT_HEADER_SIZE 96

#define FDX__CAT_H_VERSION 8
#define FDX__CAT_H_HSIZE 12
#define FDX__CAT_H_CREATED 16
#define FDX__CAT_H_NENTRIES 24
#define FDX__CAT_H_NORIGINS 28
#define FDX__CAT_H_ORIGINS 32
#define FDX__CAT_H_ENTRIES 48
#define FDX__CAT_H_STRINGS 64
#define FDX__CAT_H_ENTRY_SIZE 80
#define FDX__CAT_H_BODY_CRC 84
#define FDX__CAT_H_FLAGS 88
#define FDX__CAT_H_HEADER_CRC 92

#define FDX__CAT_ORIGIN_SIZE 24
#define FDX__CAT_ORIGIN_FIELDS 6

#define FDX__CAT_ENTRY_SIZE 28
#define FDX__CAT_E_SIZE 0
#define FDX__CAT_E_PATH 8
#define FDX__CAT_E_PACKAGE 12
#define FDX__CAT_E_VERSION 16
#define FDX__CAT_E_ARCH 20
#define FDX__CAT_E_ORIGIN 24
#define FDX__CAT_E_KIND 26

/* Largest compressed catalog accepted, once decompressed. */
#define FDX__CAT_MAX_INFLATED ((size_t)1 << 30)

#endif /* FLOWDEX_CATALOG_INT_H */
