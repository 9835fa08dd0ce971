import sys

chunk = "x" * (1024 * 1024)
while True:
    sys.stdout.write(chunk)
