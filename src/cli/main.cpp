#include <cstdio>

int main() {
  std::puts("nucleus: under construction");
  return 0;
}
