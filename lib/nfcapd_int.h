/*
 * Private: the byte layout of nfdump's nfcapd files, as far as flowdex
 * reads it.  Every multi-byte field is little-endian (nfdump writes host
 * order and every file seen in practice comes from a little-endian host;
 * a byte-swapped magic is refused).  Offsets are from the start of the
 * structure they belong to.  Shared by lib/nfcapd.c and its tests, which
 * build files by hand from these numbers.
 *
 * Layout 2 (nfdump 1.7):
 *   file header (40 bytes), data blocks, then appendix blocks (ident and
 *   stat records) at offAppendix.
 * Layout 1 (nfdump 1.6):
 *   file header (140 bytes), stat record (136 bytes), data blocks.
 * Every block: 12-byte header, then `size` bytes, compressed as the file
 * header says; uncompressed at most 5 MB.
 */
#ifndef FLOWDEX_NFCAPD_INT_H
#define FLOWDEX_NFCAPD_INT_H

#define NFC_MAGIC 0xA50Cu

/* Layout 2 file header */
#define NFC_V2_HDR_LEN 40
#define NFC_V2_OFF_VERSION 2      /* u16: 2 */
#define NFC_V2_OFF_NFDVERSION 4   /* u32: nfdump version */
#define NFC_V2_OFF_CREATED 8      /* u64: time_t */
#define NFC_V2_OFF_COMPRESSION 16 /* u8: NFC_COMP_* */
#define NFC_V2_OFF_ENCRYPTION 17  /* u8: 0 */
#define NFC_V2_OFF_APPX_BLOCKS 18 /* u16 */
#define NFC_V2_OFF_CREATOR 20     /* u32 (unused in 1.7.1) */
#define NFC_V2_OFF_APPX_OFF 24    /* u64: file offset of the appendix */
#define NFC_V2_OFF_BLOCKSIZE 32   /* u32 */
#define NFC_V2_OFF_NUMBLOCKS 36   /* u32: data blocks, appendix excluded */

/* Layout 1 file header and the stat record that follows it */
#define NFC_V1_HDR_LEN 140
#define NFC_V1_OFF_FLAGS 4      /* u32: NFC_V1_FLAG_* */
#define NFC_V1_OFF_NUMBLOCKS 8  /* u32 */
#define NFC_V1_OFF_IDENT 12     /* char[128] */
#define NFC_V1_STAT_LEN 136
#define NFC_V1_FLAG_LZO 0x01u
#define NFC_V1_FLAG_BZ2 0x08u
#define NFC_V1_FLAG_LZ4 0x10u

enum nfc_comp {
    NFC_COMP_NONE = 0,
    NFC_COMP_LZO = 1,
    NFC_COMP_BZ2 = 2,
    NFC_COMP_LZ4 = 3,
    NFC_COMP_ZSTD = 4
};

/* Block header: u32 NumRecords, u32 size, u16 type, u16 flags */
#define NFC_BLOCK_HDR_LEN 12
#define NFC_BLOCK_TYPE_2 2      /* 1.6 records */
#define NFC_BLOCK_TYPE_3 3      /* 1.7 records */
/* nfdump's BUFFSIZE (5 MB) holds header and data */
#define NFC_BLOCK_MAX (5u * 1048576u - NFC_BLOCK_HDR_LEN)

/* Record header: u16 type, u16 size (whole record) */
#define NFC_REC_EXTMAP 2        /* 1.6 extension map */
#define NFC_REC_EXPORTER 7      /* exporter info */
#define NFC_REC_SAMPLER_V0 9    /* legacy sampler */
#define NFC_REC_COMMON 10       /* 1.6 flow record */
#define NFC_REC_V3 11           /* 1.7 flow record */
#define NFC_REC_SAMPLER 15      /* sampler */

/*
 * Exporter info (32 bytes): u32 version @4, ip @8 (16 bytes: IPv4 as a
 * u32 @16, IPv6 as two u64 halves @8 and @16), u16 sa_family @24,
 * u16 sysid @26, u32 id @28.
 */
#define NFC_EXP_LEN 32
/* Sampler (24 bytes): u16 sysid @4, u16 algorithm @6, i64 id @8,
 * u32 packet interval @16, u32 space interval @20. */
#define NFC_SAMP_LEN 24
/* Legacy sampler (16 bytes): i32 id @4, u32 interval @8, u16 mode @12,
 * u16 sysid @14. */
#define NFC_SAMP_V0_LEN 16

/*
 * V3 record header (12 bytes): u16 type, u16 size, u16 numElements @4,
 * u8 engineType @6, u8 engineID @7, u16 exporterID @8, u8 flags @10,
 * u8 nfversion @11.  Then numElements elements: u16 type, u16 length
 * (header included), data.
 */
#define NFC_V3_HDR_LEN 12
#define NFC_V3_FLAG_SAMPLED 0x02u
#define NFC_EL_HDR_LEN 4
#define NFC_EX_GENERIC 1   /* 48: first@0 last@8 recv@16 pkts@24 bytes@32
                              sport@40 dport@42 proto@44 flags@45 */
#define NFC_EX_IPV4 2      /* 8: src@0 dst@4, u32 each */
#define NFC_EX_IPV6 3      /* 32: src@0 dst@16, two u64 halves each */
#define NFC_EX_CNT 5       /* 24: flows@0 outPackets@8 outBytes@16 */

/*
 * 1.6 common record (type 10), 32 bytes before its data: u8 flags @4,
 * u16 ext_map @6, u16 msec_first @8, u16 msec_last @10, u32 first @12,
 * u32 last @16, u8 fwd_status @20, tcp_flags @21, proto @22, tos @23,
 * u16 sport @24, u16 dport @26, u16 exporter_sysid @28.  Then addresses
 * (8 or 32 bytes), packets (4 or 8), bytes (4 or 8), then the optional
 * extensions in the order of the extension map.
 */
#define NFC_COMMON_HDR_LEN 32
#define NFC_CF_IPV6 0x01u
#define NFC_CF_PKG64 0x02u
#define NFC_CF_BYTES64 0x04u
#define NFC_CF_SAMPLED 0x80u
/* Extension map: u16 map_id @4, u16 extension_size @6, u16 ids @8... 0 */
#define NFC_MAP_HDR_LEN 8
#define NFC_MAX_EXT_ID 49

#endif /* FLOWDEX_NFCAPD_INT_H */
