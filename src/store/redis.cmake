# The redis and redis-cluster stores (hiredis), and the test helper that runs real
# redis-server processes. include()d by src/store/CMakeLists.txt.
add_library(gimel_store_redis
  ${CMAKE_CURRENT_SOURCE_DIR}/keys.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/redis_conn.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/redis_pipeline.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/redis_loop.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/redis_keyspace_store.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/redis_store.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/cluster_store.cc)
target_compile_options(gimel_store_redis PRIVATE ${GIMEL_WARNINGS})
target_link_libraries(gimel_store_redis
  PUBLIC gimel_hll gimel_common
  PRIVATE gimel_hiredis Boost::headers Threads::Threads)

# gimel::testing::RedisServer / RedisCluster (tests/support/redis_server.h).
add_library(gimel_test_support STATIC ${PROJECT_SOURCE_DIR}/tests/support/redis_server.cc)
target_include_directories(gimel_test_support PUBLIC ${PROJECT_SOURCE_DIR}/tests)
target_compile_options(gimel_test_support PRIVATE ${GIMEL_WARNINGS})
target_link_libraries(gimel_test_support PUBLIC gimel_hiredis GTest::gtest Threads::Threads)

gimel_add_test(NAME redis_store_test
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/redis_store_test.cc
  LIBS gimel_store_redis gimel_test_support gimel_hiredis
  LABELS redis)

gimel_add_test(NAME redis_loop_test
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/redis_loop_test.cc
  LIBS gimel_store_redis gimel_test_support Boost::headers
  LABELS redis)

gimel_add_test(NAME cluster_store_test
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/cluster_store_test.cc
  LIBS gimel_store_redis gimel_test_support gimel_hiredis
  LABELS redis)
