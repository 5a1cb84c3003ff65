# Versions of everything dev/ installs. A change here lands in a new cache directory, so an old
# cache is never half-reused.
POSTGRES_MAJOR=15
S3S_FS_VERSION=0.14.1
KAFKA_VERSION=4.3.1
CMAKE_VERSION=3.31.10
