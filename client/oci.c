/* oci.c: in progress */
typedef int chartfs_placeholder_t;
