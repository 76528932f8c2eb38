/* pow_cuda.h - the CUDA proof-of-work backend (built only when CMake found
 * nvcc: MUSTER_HAVE_CUDA is then defined).
 *
 * The whole leaf runs on the GPU, one thread per leaf: seed expansion,
 * mixing and the final hash, with BLAKE2b-256 implemented in the kernel
 * (so only 32 bytes per leaf come back over PCIe). The scratch buffers live
 * in global memory, interleaved (word j of the batch's thread t at
 * j * batch + t) so that the sequential sweep is coalesced; the
 * data-dependent reads are not, and are meant not to be. Leaves go in
 * batches sized to half the free device memory, and the mixing rounds of a
 * batch in launches of about 2^30 steps, so that a job can be cancelled
 * between launches and no launch trips a display watchdog.
 *
 * The device functions are __host__ __device__: pow_cuda_leaf_host runs
 * the very same code on the CPU, so that it is checked against pow_leaf on
 * machines without a GPU.
 */
#ifndef MUSTER_AGENT_POW_CUDA_H
#define MUSTER_AGENT_POW_CUDA_H

#include <stdint.h>

#include "pow.h"
#include "pow_backend.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The backend. Its create fails with "no CUDA device: <CUDA's reason>"
 * when the runtime finds no usable device (no driver, no GPU); it then uses
 * device 0. */
const pow_backend_ops *pow_backend_cuda(void);

/* Leaf i computed on the CPU by the kernel's own code (scratch: W words).
 * Must equal pow_leaf. */
void pow_cuda_leaf_host(const pow_params *p, uint32_t i, uint64_t *scratch,
                        uint8_t out[POW_HASH_BYTES]);

#ifdef __cplusplus
}
#endif

#endif
