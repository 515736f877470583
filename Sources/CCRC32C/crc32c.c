// CRC-32C for the broker's journal: one record's checksum per record written and read.
// The hardware path (x86-64 SSE 4.2) runs at several GB/s; the software path (slicing-by-8) is
// the fallback for other CPUs. Both give the same values (Tests/JournalTests checks the
// published check value "123456789" -> 0xE3069283).
#include "crc32c.h"

#include <string.h>

static uint32_t table[8][256];
static int table_ready;

static void build_table(void) {
    for (uint32_t byte = 0; byte < 256; byte++) {
        uint32_t crc = byte;
        for (int bit = 0; bit < 8; bit++) crc = (crc & 1) ? (crc >> 1) ^ 0x82F63B78u : crc >> 1;
        table[0][byte] = crc;
    }
    for (uint32_t byte = 0; byte < 256; byte++) {
        for (int slice = 1; slice < 8; slice++) {
            uint32_t previous = table[slice - 1][byte];
            table[slice][byte] = (previous >> 8) ^ table[0][previous & 0xFF];
        }
    }
    __atomic_store_n(&table_ready, 1, __ATOMIC_RELEASE);
}

static uint32_t software(uint32_t crc, const unsigned char *p, size_t n) {
    if (!__atomic_load_n(&table_ready, __ATOMIC_ACQUIRE)) build_table();
    while (n >= 8) {
        uint64_t word;
        memcpy(&word, p, 8);
        uint32_t low = crc ^ (uint32_t)word;
        uint32_t high = (uint32_t)(word >> 32);
        crc = table[7][low & 0xFF] ^ table[6][(low >> 8) & 0xFF] ^ table[5][(low >> 16) & 0xFF] ^ table[4][low >> 24]
            ^ table[3][high & 0xFF] ^ table[2][(high >> 8) & 0xFF] ^ table[1][(high >> 16) & 0xFF] ^ table[0][high >> 24];
        p += 8;
        n -= 8;
    }
    while (n--) crc = (crc >> 8) ^ table[0][(crc ^ *p++) & 0xFF];
    return crc;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2")))
static uint32_t hardware(uint32_t crc, const unsigned char *p, size_t n) {
    uint64_t crc64 = crc;
    while (n >= 8) {
        uint64_t word;
        memcpy(&word, p, 8);
        crc64 = __builtin_ia32_crc32di(crc64, word);
        p += 8;
        n -= 8;
    }
    uint32_t crc32 = (uint32_t)crc64;
    while (n--) crc32 = __builtin_ia32_crc32qi(crc32, *p++);
    return crc32;
}
#endif

uint32_t conveyor_crc32c(uint32_t crc, const void *data, size_t length) {
    crc = ~crc;
#if defined(__x86_64__)
    if (__builtin_cpu_supports("sse4.2")) return ~hardware(crc, data, length);
#endif
    return ~software(crc, data, length);
}
