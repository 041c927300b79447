# The embedded (RocksDB) store. include()d by src/store/CMakeLists.txt.
add_library(gimel_store_embedded
  ${CMAKE_CURRENT_SOURCE_DIR}/embedded_store.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/embedded_keys.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/embedded_wal.cc)
target_compile_options(gimel_store_embedded PRIVATE ${GIMEL_WARNINGS})
target_link_libraries(gimel_store_embedded
  PUBLIC gimel_hll gimel_common
  PRIVATE RocksDB::rocksdb-shared Threads::Threads)

# The test also opens RocksDB directly (to plant corrupt bytes).
gimel_add_test(NAME embedded_store_test
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/embedded_store_test.cc
  LIBS gimel_store_embedded RocksDB::rocksdb-shared Threads::Threads)
