// Preloaded into nginx by test_robustness.py: operator new throws
// std::bad_alloc at its TWOSTEP_FAIL_NEW-th call (counting from 0), once,
// so a test can make each C++ allocation of the module fail in turn.
// nginx is C: every operator new in the process is the module's.
#include <cstdlib>
#include <new>

namespace {

long countdown = -2;   // -2: not read yet; -1: never fail

void *allocate(std::size_t n)
{
    if (countdown == -2) {
        const char *e = std::getenv("TWOSTEP_FAIL_NEW");
        countdown = e ? std::atol(e) : -1;
    }
    if (countdown == 0) {
        countdown = -1;
        throw std::bad_alloc();
    }
    if (countdown > 0) {
        countdown--;
    }
    void *p = std::malloc(n ? n : 1);
    if (p == nullptr) {
        throw std::bad_alloc();
    }
    return p;
}

}  // namespace

void *operator new(std::size_t n) { return allocate(n); }
void *operator new[](std::size_t n) { return allocate(n); }
void operator delete(void *p) noexcept { std::free(p); }
void operator delete[](void *p) noexcept { std::free(p); }
void operator delete(void *p, std::size_t) noexcept { std::free(p); }
void operator delete[](void *p, std::size_t) noexcept { std::free(p); }
