import VisionCore
print("vc")
