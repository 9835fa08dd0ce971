"""A file that uses a 32-thread pool at import, which the default memory limit must allow."""

from concurrent.futures import ThreadPoolExecutor


def work(number):
    return len([bytearray(200_000) for _ in range(20)]) + number


with ThreadPoolExecutor(max_workers=32) as pool:
    TOTAL = sum(pool.map(work, range(200)))
